"""Deletes proven across time: a contact a complete read did not return, and its probe did not
find, is first recorded missing; only a later run's look that still does not find it deletes it.
Runs count what they found missing, the deletions the mass-delete guard held back, and the days
left unverified because their answers looked like an outage.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
PROVED_DELETED = "Contacts that read proved deleted at the source"
FOUND_MISSING = "Contacts that read found missing (deleted once a later run's look confirms)"
COUNTERS = (
    (
        "missing",
        "Contacts this run found missing (a complete read and a probe did not return them)",
    ),
    (
        "deletions_held",
        "Deletions the mass-delete guard held back (ETL_CONTACTS_MAX_DELETE_PERCENT)",
    ),
    (
        "suspect_days",
        "Days left unverified: their answers lacked too many stored contacts (an outage?)",
    ),
)


def _schema() -> sa.sql.quoted_name:
    """The configured schema: alembic's DDL operations do not use the schema translation."""
    return sa.sql.quoted_name(op.get_context().version_table_schema, quote=True)


def upgrade() -> None:
    schema = _schema()
    op.create_table(
        "missing_contacts",
        sa.Column(
            "account", sa.Text(), nullable=False, comment="Express-Chat account the row came from"
        ),
        sa.Column("contact_id", sa.Text(), nullable=False, comment="The contact's source _id"),
        sa.Column("created_at", TS, nullable=False, comment="createdAt as stored when missed"),
        sa.Column("last_seen_at", TS, comment="lastSeenAt as stored when missed"),
        sa.Column(
            "missing_since",
            TS,
            nullable=False,
            comment="When a run first missed it: its deleted_at once a later look confirms",
        ),
        sa.Column("run_id", sa.Text(), nullable=False, comment="Run that first missed it"),
        sa.PrimaryKeyConstraint("account", "contact_id", name="pk_missing_contacts"),
        schema=schema,
        comment="Live contacts the source did not return when last asked: deleted only when a "
        "later run's look still does not find them, live again when any run receives them",
    )
    op.alter_column(
        "day_verifications",
        "deletions_found",
        comment=FOUND_MISSING,
        existing_comment=PROVED_DELETED,
        existing_type=sa.BigInteger(),
        existing_nullable=False,
        schema=schema,
    )
    for name, comment in COUNTERS:
        op.add_column(
            "sync_runs",
            sa.Column(name, sa.BigInteger(), server_default="0", nullable=False, comment=comment),
            schema=schema,
        )


def downgrade() -> None:
    schema = _schema()
    for name, _ in COUNTERS:
        op.drop_column("sync_runs", name, schema=schema)
    op.alter_column(
        "day_verifications",
        "deletions_found",
        comment=PROVED_DELETED,
        existing_comment=FOUND_MISSING,
        existing_type=sa.BigInteger(),
        existing_nullable=False,
        schema=schema,
    )
    op.drop_table("missing_contacts", schema=schema)
