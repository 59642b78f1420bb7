"""Exact accounting and deletes from proof: sync_runs.refused_older, holes_repaired and
ranges_combined; contact_rejects keeps a content once per account and reason (record_digest).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COUNTERS = (
    ("refused_older", "Records not written: older than the stored row or a newer copy"),
    ("holes_repaired", "Contacts a completely read window missed, found by asking again"),
)
# comments on contact_rejects and its reason: (after this revision, before it)
REASON = (
    "Why: missing_id, unparseable_date, ... (malformed); older_than_stored (the stored row is "
    "newer), superseded_in_batch (a newer copy came in the same batch)",
    "Why: missing_id, unparseable_date, ...",
)
TABLE = (
    "Records not loaded (malformed, or older than the stored row), whole, with the reason, once "
    "per account, reason and content: nothing is dropped silently",
    "Records that could not be loaded, whole, with the reason: nothing is dropped silently",
)
DIGEST_INDEX = "ix_contact_rejects_account_reason_record_digest"


def _schema() -> sa.sql.quoted_name:
    """The configured schema. Unlike the CREATE TABLE of 0001, alembic's ALTER statements do not
    go through SQLAlchemy's schema translation, so they get the real name."""
    return sa.sql.quoted_name(op.get_context().version_table_schema, quote=True)


def _quoted() -> str:
    """The configured schema, quoted for raw SQL."""
    return op.get_context().dialect.identifier_preparer.quote(_schema())


def upgrade() -> None:
    schema = _schema()
    for name, comment in COUNTERS:
        op.add_column(
            "sync_runs",
            sa.Column(name, sa.BigInteger(), server_default="0", nullable=False, comment=comment),
            schema=schema,
        )
    op.add_column(
        "sync_runs",
        sa.Column(
            "ranges_combined",
            sa.Boolean(),
            nullable=True,
            comment="The server was seen to AND a lastSeenAt range with a createdAt range "
            "(NULL: not known)",
        ),
        schema=schema,
    )
    op.add_column(
        "contact_rejects",
        sa.Column(
            "record_digest",
            sa.Text(),
            nullable=True,
            comment="sha256 of the record's canonical JSON (its jsonb text): a content is "
            "kept once",
        ),
        schema=schema,
    )
    rejects = f"{_quoted()}.contact_rejects"
    # the loader computes the digest with the same expression, so a record quarantined before
    # this migration is recognized when it comes again
    op.execute(
        f"UPDATE {rejects} SET record_digest = "
        "encode(sha256(convert_to(record::text, 'UTF8')), 'hex')"
    )
    op.execute(
        f"""
        DELETE FROM {rejects} WHERE id IN (
            SELECT id FROM (
                SELECT id, row_number() OVER (
                    PARTITION BY account, reason, record_digest ORDER BY id
                ) AS nth
                FROM {rejects}
            ) AS copies
            WHERE nth > 1
        )
        """
    )
    op.alter_column(
        "contact_rejects", "record_digest", existing_type=sa.Text(), nullable=False, schema=schema
    )
    op.create_index(
        DIGEST_INDEX,
        "contact_rejects",
        ["account", "reason", "record_digest"],
        unique=True,
        schema=schema,
    )
    _comment_rejects(schema, after=True)


def downgrade() -> None:
    schema = _schema()
    _comment_rejects(schema, after=False)
    op.drop_index(DIGEST_INDEX, table_name="contact_rejects", schema=schema)
    op.drop_column("contact_rejects", "record_digest", schema=schema)
    op.drop_column("sync_runs", "ranges_combined", schema=schema)
    for name, _ in reversed(COUNTERS):
        op.drop_column("sync_runs", name, schema=schema)


def _comment_rejects(schema: sa.sql.quoted_name, *, after: bool) -> None:
    """Comments on contact_rejects as they read after this revision (or before it)."""
    new, old = (0, 1) if after else (1, 0)
    op.alter_column(
        "contact_rejects",
        "reason",
        existing_type=sa.Text(),
        existing_nullable=False,
        comment=REASON[new],
        existing_comment=REASON[old],
        schema=schema,
    )
    op.create_table_comment(
        "contact_rejects", TABLE[new], existing_comment=TABLE[old], schema=schema
    )
