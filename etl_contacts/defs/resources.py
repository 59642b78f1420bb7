"""Resources: the Express-Chat API and the warehouse, configured from environment variables."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from etl_contacts.settings import DEFAULT_BASE_URL, DEFAULT_HOME, DEFAULT_SCHEMA
from etl_contacts.source import ClientConfig
from etl_contacts.warehouse import Warehouse
from etl_contacts.warehouse.embedded import database_url_or_embedded


class ExpressChatResource(dg.ConfigurableResource):
    """The Express-Chat API of one account. The token comes from an `EnvVar`, so the UI masks it.

    Each setting is a field of `ClientConfig` with its default: one place says what it is.
    """

    base_url: str = DEFAULT_BASE_URL
    token: str
    connect_timeout: float = ClientConfig.connect_timeout
    read_timeout: float = ClientConfig.read_timeout
    max_concurrency: int = ClientConfig.max_concurrency
    requests_per_second: float | None = ClientConfig.requests_per_second
    max_attempts: int = ClientConfig.max_attempts
    retry_budget_seconds: float = ClientConfig.retry_budget_seconds
    ca_bundle: str | None = ClientConfig.ca_bundle

    def client_config(self) -> ClientConfig:
        shared = {f.name for f in dataclasses.fields(ClientConfig)} & set(type(self).model_fields)
        return ClientConfig(**{name: getattr(self, name) for name in shared})


class WarehouseResource(dg.ConfigurableResource):
    """The PostgreSQL warehouse; with no URL, the embedded server under `home`."""

    database_url: str | None = None
    schema_name: str = DEFAULT_SCHEMA
    home: str = DEFAULT_HOME
    pii_key: str | None = None

    _warehouse: Warehouse | None = PrivateAttr(default=None)

    def warehouse(self) -> Warehouse:
        """One engine per run, created on first use (starting the embedded server if needed)."""
        if self._warehouse is None:
            url = database_url_or_embedded(self.database_url, Path(self.home))
            self._warehouse = Warehouse(url, schema=self.schema_name)
        return self._warehouse

    def pii_key_bytes(self) -> bytes | None:
        return self.pii_key.encode() if self.pii_key else None
