"""The PostgreSQL warehouse: table metadata, COPY + upsert loading, run records, embedded server."""

from etl_contacts.warehouse import tables
from etl_contacts.warehouse.loader import CompletedWindow, LoadCounts, Seen
from etl_contacts.warehouse.warehouse import Warehouse, error_cause

__all__ = ["CompletedWindow", "LoadCounts", "Seen", "Warehouse", "error_cause", "tables"]
