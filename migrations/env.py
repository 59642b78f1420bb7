"""Alembic environment: the schema name and URL come from the caller, the model from tables.py.

`Warehouse.migrate()` passes its connection and schema in `config.attributes`; the `alembic`
command line passes them as `-x url=... -x schema=...` (or uses ETL_CONTACTS_DATABASE_URL).
Tables are declared in schema `express_chat` and translated to the configured one.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from etl_contacts.settings import DEFAULT_SCHEMA
from etl_contacts.warehouse.tables import metadata

config = context.config
arguments = context.get_x_argument(as_dictionary=True)
schema = config.attributes.get("schema") or arguments.get("schema") or DEFAULT_SCHEMA


def _include_name(name: str | None, type_: str, _parent_names: object) -> bool:
    return type_ != "schema" or name == schema


def run_migrations(connection: sa.Connection) -> None:
    connection.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
    connection = connection.execution_options(schema_translate_map={DEFAULT_SCHEMA: schema})
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table_schema=schema,
        include_schemas=True,
        include_name=_include_name,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    url = arguments.get("url") or os.environ.get("ETL_CONTACTS_DATABASE_URL")
    if not url:
        raise SystemExit("pass -x url=postgresql+psycopg://... or set ETL_CONTACTS_DATABASE_URL")
    with sa.create_engine(url).begin() as conn:
        run_migrations(conn)
