"""The PostgreSQL warehouse: table metadata, COPY + upsert loading, run records, embedded server.

Its names load on first use (PEP 562): the normalizer's worker process imports only
`etl_contacts.warehouse.frames`, and should not pay for SQLAlchemy, Alembic and psycopg."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from etl_contacts.warehouse import tables
    from etl_contacts.warehouse.loader import CompletedWindow, LoadCounts, Seen
    from etl_contacts.warehouse.warehouse import Warehouse, error_cause

__all__ = ["CompletedWindow", "LoadCounts", "Seen", "Warehouse", "error_cause", "tables"]

_HOMES = {
    "CompletedWindow": "etl_contacts.warehouse.loader",
    "LoadCounts": "etl_contacts.warehouse.loader",
    "Seen": "etl_contacts.warehouse.loader",
    "Warehouse": "etl_contacts.warehouse.warehouse",
    "error_cause": "etl_contacts.warehouse.warehouse",
}


def __getattr__(name: str) -> object:
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
    elif name == "tables":
        value = importlib.import_module("etl_contacts.warehouse.tables")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value
