"""Unaccounted contacts per day, kept with the day's verification: those its complete read
returned that the table does not hold live when the run ends, so `day_reconciliation` can say
which day is not whole.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UNACCOUNTED = (
    "Contacts that read returned that were not stored live when its run ended (0: the day is "
    "whole in the table)"
)


def upgrade() -> None:
    op.add_column(
        "day_verifications",
        sa.Column(
            "contacts_unaccounted",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment=UNACCOUNTED,
        ),
        schema=sa.sql.quoted_name(op.get_context().version_table_schema, quote=True),
    )


def downgrade() -> None:
    op.drop_column(
        "day_verifications",
        "contacts_unaccounted",
        schema=sa.sql.quoted_name(op.get_context().version_table_schema, quote=True),
    )
