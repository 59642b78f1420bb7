"""The catalog reads as documentation: every asset says what it is, who owns it and where it
comes from."""

from __future__ import annotations

import dagster as dg
import pytest

from etl_contacts.defs.definitions import build_definitions
from etl_contacts.settings import Settings


@pytest.fixture(scope="module")
def definitions() -> dg.Definitions:
    return build_definitions(
        Settings.from_env(
            {
                "SHOP_TOKEN": "t",
                "BLOG_TOKEN": "t",
                "ETL_CONTACTS_ACCOUNTS": "shop=SHOP_TOKEN,blog=BLOG_TOKEN",
            }
        )
    )


def test_every_asset_has_a_description_owners_and_tags(definitions: dg.Definitions) -> None:
    specs = list(definitions.resolve_all_asset_specs())
    assert len(specs) == 10  # two accounts, five assets each
    for spec in specs:
        assert spec.description, spec.key
        assert spec.owners == ["team:data-engineering"], spec.key
        assert spec.tags["source"] == "express_chat"
        assert spec.tags["account"] == spec.key.path[0], spec.key
        assert spec.tags["layer"] in {"raw", "analytics"}


def test_every_check_says_what_it_checks(definitions: dg.Definitions) -> None:
    graph = definitions.get_repository_def().asset_graph
    checks = [graph.get_check_spec(key) for key in graph.asset_check_keys]
    assert len(checks) == 20  # ten per account
    assert all(check.description for check in checks)
