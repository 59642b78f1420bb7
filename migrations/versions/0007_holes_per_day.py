"""Holes per day: the contacts a day's complete read missed and its first look found, kept with
the day's verification, so the `holes_repaired` check can say which day lost them.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

HOLES = "Contacts that read missed and asking for them by themselves found (holes repaired)"


def upgrade() -> None:
    op.add_column(
        "day_verifications",
        sa.Column(
            "holes_repaired", sa.BigInteger(), server_default="0", nullable=False, comment=HOLES
        ),
        schema=sa.sql.quoted_name(op.get_context().version_table_schema, quote=True),
    )


def downgrade() -> None:
    op.drop_column(
        "day_verifications",
        "holes_repaired",
        schema=sa.sql.quoted_name(op.get_context().version_table_schema, quote=True),
    )
