"""Resources: the Express-Chat API and the warehouse, configured from environment variables."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from etl_contacts.settings import DEFAULT_BASE_URL, DEFAULT_SCHEMA
from etl_contacts.source import ClientConfig
from etl_contacts.warehouse import Warehouse
from etl_contacts.warehouse.embedded import database_url_or_embedded


class ExpressChatResource(dg.ConfigurableResource):
    """The Express-Chat API of one account. The token comes from an `EnvVar`, so the UI masks it."""

    base_url: str = DEFAULT_BASE_URL
    token: str
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_concurrency: int = 8
    requests_per_second: float | None = None
    max_attempts: int = 8
    retry_budget_seconds: float = 300.0
    ca_bundle: str | None = None

    def client_config(self) -> ClientConfig:
        return ClientConfig(
            base_url=self.base_url,
            token=self.token,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_concurrency=self.max_concurrency,
            requests_per_second=self.requests_per_second,
            max_attempts=self.max_attempts,
            retry_budget_seconds=self.retry_budget_seconds,
            ca_bundle=self.ca_bundle,
        )


class WarehouseResource(dg.ConfigurableResource):
    """The PostgreSQL warehouse; with no URL, the embedded server under `home`."""

    database_url: str | None = None
    schema_name: str = DEFAULT_SCHEMA
    home: str = ".etl_contacts"
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
