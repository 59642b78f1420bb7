"""Truth over time: when each day's createdAt window was last read completely, and
contacts_current shows it per contact (verified_at), without rewriting any row.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
VERIFIED_AT = (
    "When the day this contact was created in was last read completely from the source: the row "
    "is at most this old (NULL: never verified since it was loaded)"
)


def _schema() -> sa.sql.quoted_name:
    """The configured schema: alembic's DDL operations do not use the schema translation."""
    return sa.sql.quoted_name(op.get_context().version_table_schema, quote=True)


def _quoted() -> str:
    return op.get_context().dialect.identifier_preparer.quote(_schema())


def upgrade() -> None:
    schema = _schema()
    op.create_table(
        "day_verifications",
        sa.Column(
            "account", sa.Text(), nullable=False, comment="Express-Chat account the row came from"
        ),
        sa.Column("day", sa.Date(), nullable=False, comment="Local day (ETL_CONTACTS_TIMEZONE)"),
        sa.Column("day_start", TS, nullable=False, comment="Start of the day, in UTC"),
        sa.Column("day_end", TS, nullable=False, comment="End of the day, in UTC (exclusive)"),
        sa.Column(
            "verified_at",
            TS,
            nullable=False,
            comment="When the day's createdAt window was last read completely",
        ),
        sa.Column(
            "contacts_seen", sa.BigInteger(), nullable=False, comment="Contacts that read returned"
        ),
        sa.Column(
            "deletions_found",
            sa.BigInteger(),
            nullable=False,
            comment="Contacts that read proved deleted at the source",
        ),
        sa.Column("run_id", sa.Text(), nullable=False, comment="Run that read it"),
        sa.PrimaryKeyConstraint("account", "day_start", name="pk_day_verifications"),
        schema=schema,
        comment="Per account and day: when its createdAt window was last read completely, what "
        "it held, and the deletions it proved; the freshness promise is kept here",
    )
    _current_view(with_verified_at=True)


def downgrade() -> None:
    _current_view(with_verified_at=False)
    op.drop_table("day_verifications", schema=_schema())


def _current_view(*, with_verified_at: bool) -> None:
    """contacts_current, with or without verified_at, its columns commented like contacts'.

    verified_at comes from the one verification whose day holds the contact's createdAt: a
    lateral lookup on the primary key (one index probe a contact; a range join would compare
    every contact with every day), and one row a contact even where days overlap (after a
    change of ETL_CONTACTS_TIMEZONE)."""
    schema = _quoted()
    if with_verified_at:
        create = f"""
        CREATE OR REPLACE VIEW {schema}.contacts_current AS
        SELECT c.*, v.verified_at FROM {schema}.contacts c
        LEFT JOIN LATERAL (
            SELECT d.verified_at FROM {schema}.day_verifications d
            WHERE d.account = c.account AND d.day_start <= c.created_at
              AND c.created_at < d.day_end
            ORDER BY d.day_start DESC LIMIT 1
        ) v ON true
        WHERE c.deleted_at IS NULL;
        """
    else:  # a column cannot be dropped by CREATE OR REPLACE
        create = f"""
        DROP VIEW {schema}.contacts_current;
        CREATE VIEW {schema}.contacts_current AS
        SELECT * FROM {schema}.contacts WHERE deleted_at IS NULL;
        """
    op.execute(
        f"""
        {create}
        COMMENT ON VIEW {schema}.contacts_current IS
            'Contacts the source still returns (deleted_at IS NULL), with when each was verified';
        DO $$ DECLARE col record; BEGIN
            FOR col IN SELECT attname, col_description(attrelid, attnum) AS text
                       FROM pg_attribute
                       WHERE attrelid = '{schema}.contacts'::regclass
                         AND attnum > 0 AND NOT attisdropped
            LOOP
                EXECUTE format('COMMENT ON COLUMN {schema}.contacts_current.%I IS %L',
                               col.attname, col.text);
            END LOOP;
        END $$;
        """
    )
    if with_verified_at:
        op.execute(f"COMMENT ON COLUMN {schema}.contacts_current.verified_at IS '{VERIFIED_AT}'")
