"""The folders are the architecture: each layer imports only the layers below it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "etl_contacts"
# what each folder may import from the package besides itself; `settings` and `timestamps` are
# the shared base every layer may use
ALLOWED = {
    "source": set(),
    "warehouse": set(),
    "pipeline": {"source", "warehouse"},
    "defs": {"pipeline", "source", "warehouse"},
    "cli": {"defs", "pipeline", "source", "warehouse", "sandbox"},
    "sandbox": set(),
}
BASE = {"settings", "timestamps"}


def _imported_layers(path: Path) -> set[str]:
    layers = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "etl_contacts" and len(parts) > 1:
                layers.add(parts[1])
    return layers


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_the_layers_below_it(layer: str) -> None:
    modules = sorted((PACKAGE / layer).rglob("*.py"))
    assert modules, f"no modules in {layer}/"
    wrong = {
        f"{path.relative_to(PACKAGE)} imports {other}"
        for path in modules
        for other in _imported_layers(path) - ALLOWED[layer] - BASE - {layer}
    }
    assert not wrong


def test_the_package_root_holds_only_the_shared_base() -> None:
    loose = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    assert loose == BASE
    assert not _imported_layers(PACKAGE / "timestamps.py")
    assert not _imported_layers(PACKAGE / "settings.py")


def test_the_normalizer_worker_imports_no_sql_or_http_client() -> None:
    """The normalizer's worker process imports what `normalize` needs, and no more: SQLAlchemy,
    Alembic, psycopg and requests cost it about 40 MB of the run's peak memory, for nothing."""
    heavy = {"sqlalchemy", "alembic", "psycopg", "requests", "urllib3", "dagster"}
    code = (
        "import sys, etl_contacts.pipeline.normalizer; "
        "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    assert not heavy & set(loaded)
