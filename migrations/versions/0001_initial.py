"""contacts, children, rejects, runs, state

Revision ID: 0001
Revises:
Create Date: 2026-11-24 20:04:47.678054
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_attributes",
        sa.Column(
            "account", sa.Text(), nullable=False, comment="Express-Chat account the row came from"
        ),
        sa.Column("contact_id", sa.Text(), nullable=False, comment="The contact's source _id"),
        sa.Column("key", sa.Text(), nullable=False, comment="Attribute key"),
        sa.Column(
            "value_text",
            sa.Text(),
            nullable=True,
            comment="Value as text (JSON text for non-strings)",
        ),
        sa.Column(
            "value_json",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="Value as JSON, whatever its type",
        ),
        sa.PrimaryKeyConstraint("account", "contact_id", "key", name=op.f("pk_contact_attributes")),
        schema="express_chat",
        comment="Custom attributes of a contact; replaced with the contact",
    )
    op.create_table(
        "contact_history",
        sa.Column(
            "account", sa.Text(), nullable=False, comment="Express-Chat account the row came from"
        ),
        sa.Column("contact_id", sa.Text(), nullable=False, comment="The contact's source _id"),
        sa.Column(
            "valid_from",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="Start of this version",
        ),
        sa.Column(
            "valid_to",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="End of this version (NULL: current)",
        ),
        sa.Column(
            "is_current", sa.Boolean(), nullable=False, comment="This is the contact's version now"
        ),
        sa.Column("status", sa.Text(), nullable=True, comment="Status in this version"),
        sa.Column("agent_id", sa.Text(), nullable=True, comment="Agent in this version"),
        sa.Column("tags", sa.ARRAY(sa.Text()), nullable=True, comment="Tags in this version"),
        sa.Column("name", sa.Text(), nullable=True, comment="Name in this version"),
        sa.Column("email", sa.Text(), nullable=True, comment="Email in this version"),
        sa.Column("phone_e164", sa.Text(), nullable=True, comment="Phone in this version"),
        sa.Column("tracked_hash", sa.Text(), nullable=False, comment="Hash of the tracked fields"),
        sa.PrimaryKeyConstraint(
            "account", "contact_id", "valid_from", name=op.f("pk_contact_history")
        ),
        schema="express_chat",
        comment="Versions of a contact's tracked fields; a new row only when one of them changes",
    )
    op.create_table(
        "contact_rejects",
        sa.Column(
            "id",
            sa.BigInteger(),
            sa.Identity(always=False),
            nullable=False,
            comment="Surrogate key",
        ),
        sa.Column(
            "account", sa.Text(), nullable=False, comment="Express-Chat account the row came from"
        ),
        sa.Column("run_id", sa.Text(), nullable=False, comment="Run that received the record"),
        sa.Column(
            "contact_id",
            sa.Text(),
            nullable=True,
            comment="The record's _id, when it had a usable one",
        ),
        sa.Column(
            "reason", sa.Text(), nullable=False, comment="Why: missing_id, unparseable_date, ..."
        ),
        sa.Column("detail", sa.Text(), nullable=False, comment="What exactly was wrong"),
        sa.Column(
            "record",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="The whole record as received",
        ),
        sa.Column(
            "rejected_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_rejects")),
        schema="express_chat",
        comment="Records that could not be loaded, whole, with the reason: nothing is dropped silently",
    )
    op.create_table(
        "contact_segments",
        sa.Column(
            "account", sa.Text(), nullable=False, comment="Express-Chat account the row came from"
        ),
        sa.Column("contact_id", sa.Text(), nullable=False, comment="The contact's source _id"),
        sa.Column("segment", sa.Text(), nullable=False, comment="Segment id"),
        sa.PrimaryKeyConstraint(
            "account", "contact_id", "segment", name=op.f("pk_contact_segments")
        ),
        schema="express_chat",
        comment="Segment membership of a contact; replaced with the contact",
    )
    op.create_table(
        "contact_tags",
        sa.Column(
            "account", sa.Text(), nullable=False, comment="Express-Chat account the row came from"
        ),
        sa.Column("contact_id", sa.Text(), nullable=False, comment="The contact's source _id"),
        sa.Column("tag", sa.Text(), nullable=False, comment="Tag name"),
        sa.PrimaryKeyConstraint("account", "contact_id", "tag", name=op.f("pk_contact_tags")),
        schema="express_chat",
        comment="One row per tag of a contact; replaced with the contact",
    )
    op.create_table(
        "contacts",
        sa.Column(
            "account", sa.Text(), nullable=False, comment="Express-Chat account the row came from"
        ),
        sa.Column("contact_id", sa.Text(), nullable=False, comment="The contact's source _id"),
        sa.Column(
            "uuid", sa.Text(), nullable=True, comment="Session uuid the platform gave the contact"
        ),
        sa.Column(
            "name", sa.Text(), nullable=True, comment="Name the user provided (profile.userDetails)"
        ),
        sa.Column(
            "email",
            sa.Text(),
            nullable=True,
            comment="Email, trimmed and lower-cased (HMAC in PII mode)",
        ),
        sa.Column(
            "email_domain",
            sa.Text(),
            nullable=True,
            comment="Domain part of the email, kept in clear",
        ),
        sa.Column(
            "phone_e164",
            sa.Text(),
            nullable=True,
            comment="Phone in E.164 (+prefix number); HMAC in PII mode",
        ),
        sa.Column(
            "channel", sa.Text(), nullable=True, comment="website, whatsapp, facebook or telegram"
        ),
        sa.Column(
            "bot_id",
            sa.Text(),
            nullable=True,
            comment="Bot the contact talked to on its channel (_bot)",
        ),
        sa.Column(
            "status",
            sa.Text(),
            nullable=True,
            comment="Conversation status: OPEN, INPROGRESS, CLOSED, ...",
        ),
        sa.Column("agent_id", sa.Text(), nullable=True, comment="Agent assigned (_agentAssigned)"),
        sa.Column("is_online", sa.Boolean(), nullable=True, comment="Online when last synced"),
        sa.Column(
            "user_interacted", sa.Boolean(), nullable=True, comment="The contact has interacted"
        ),
        sa.Column(
            "is_live_chat_active", sa.Boolean(), nullable=True, comment="A live chat was active"
        ),
        sa.Column(
            "last_message_by",
            sa.Text(),
            nullable=True,
            comment="Who sent the last message: user, bot, agent",
        ),
        sa.Column(
            "website_visits", sa.Integer(), nullable=True, comment="Number of website visits"
        ),
        sa.Column(
            "has_ordered",
            sa.Boolean(),
            nullable=True,
            comment="The contact has ordered (hasOrdered.status)",
        ),
        sa.Column(
            "last_order_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="Time of the last order (hasOrdered.lastAt)",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="When the contact was created (source)",
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="When the source last updated the contact",
        ),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="Last activity of the contact (source)",
        ),
        sa.Column(
            "raw",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="The whole source record, as received",
        ),
        sa.Column(
            "content_hash", sa.Text(), nullable=False, comment="Hash of raw: unchanged = no write"
        ),
        sa.Column("tracked_hash", sa.Text(), nullable=False, comment="Hash of the history fields"),
        sa.Column(
            "first_synced_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="When a sync first stored the row",
        ),
        sa.Column(
            "last_synced_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="When a sync last changed the row",
        ),
        sa.Column(
            "deleted_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="When the source stopped returning it (soft delete)",
        ),
        sa.PrimaryKeyConstraint("account", "contact_id", name=op.f("pk_contacts")),
        schema="express_chat",
        comment="One row per Express-Chat contact: typed columns plus the raw record",
    )
    op.create_index(
        op.f("ix_contacts_account_created_at"),
        "contacts",
        ["account", "created_at"],
        unique=False,
        schema="express_chat",
    )
    op.create_index(
        op.f("ix_contacts_account_last_seen_at"),
        "contacts",
        ["account", "last_seen_at"],
        unique=False,
        schema="express_chat",
    )
    op.create_table(
        "sync_runs",
        sa.Column("run_id", sa.Text(), nullable=False, comment="Dagster run id"),
        sa.Column(
            "account", sa.Text(), nullable=False, comment="Express-Chat account the row came from"
        ),
        sa.Column("status", sa.Text(), nullable=False, comment="running, success or failed"),
        sa.Column(
            "windows",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="Windows the run was asked to load",
        ),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), nullable=False, comment="Start of the run"
        ),
        sa.Column(
            "finished_at", sa.DateTime(timezone=True), nullable=True, comment="End of the run"
        ),
        sa.Column("duration_seconds", sa.Float(), nullable=True, comment="Wall time of the run"),
        sa.Column(
            "inserted",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Contacts inserted",
        ),
        sa.Column(
            "updated",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Contacts updated",
        ),
        sa.Column(
            "unchanged",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Contacts received unchanged (no write)",
        ),
        sa.Column(
            "rejected",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Records rejected",
        ),
        sa.Column(
            "deleted",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Contacts soft-deleted",
        ),
        sa.Column(
            "requests",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="HTTP requests made",
        ),
        sa.Column(
            "retries",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Requests retried",
        ),
        sa.Column(
            "pages", sa.BigInteger(), server_default="0", nullable=False, comment="Pages received"
        ),
        sa.Column(
            "records",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Records received",
        ),
        sa.Column(
            "duplicates",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Duplicate records dropped",
        ),
        sa.Column(
            "extract_stats",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=True,
            comment="All extraction counters, retries by cause",
        ),
        sa.Column("error", sa.Text(), nullable=True, comment="Cause of failure, one line"),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_sync_runs")),
        schema="express_chat",
        comment="One row per sync run: counters, duration, status",
    )
    op.create_table(
        "sync_seen",
        sa.Column("run_id", sa.Text(), nullable=False, comment="Run that received the contact"),
        sa.Column(
            "account", sa.Text(), nullable=False, comment="Express-Chat account the row came from"
        ),
        sa.Column("contact_id", sa.Text(), nullable=False, comment="The contact's source _id"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="The contact's createdAt (NULL for a rejected record)",
        ),
        schema="express_chat",
        comment="Ids each running sync received, for soft deletes; emptied when the run ends",
        prefixes=["UNLOGGED"],
    )
    op.create_index(
        op.f("ix_sync_seen_run_id_account_created_at"),
        "sync_seen",
        ["run_id", "account", "created_at"],
        unique=False,
        schema="express_chat",
    )
    op.create_table(
        "sync_state",
        sa.Column(
            "account", sa.Text(), nullable=False, comment="Express-Chat account the row came from"
        ),
        sa.Column("stream", sa.Text(), nullable=False, comment="createdAt or lastSeenAt"),
        sa.Column(
            "watermark",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="End of the last completely loaded window",
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="When the watermark last moved",
        ),
        sa.PrimaryKeyConstraint("account", "stream", name=op.f("pk_sync_state")),
        schema="express_chat",
        comment="Watermarks: how far each stream of each account is completely loaded",
    )


def downgrade() -> None:
    op.drop_table("sync_state", schema="express_chat")
    op.drop_index(
        op.f("ix_sync_seen_run_id_account_created_at"),
        table_name="sync_seen",
        schema="express_chat",
    )
    op.drop_table("sync_seen", schema="express_chat")
    op.drop_table("sync_runs", schema="express_chat")
    op.drop_index(
        op.f("ix_contacts_account_last_seen_at"), table_name="contacts", schema="express_chat"
    )
    op.drop_index(
        op.f("ix_contacts_account_created_at"), table_name="contacts", schema="express_chat"
    )
    op.drop_table("contacts", schema="express_chat")
    op.drop_table("contact_tags", schema="express_chat")
    op.drop_table("contact_segments", schema="express_chat")
    op.drop_table("contact_rejects", schema="express_chat")
    op.drop_table("contact_history", schema="express_chat")
    op.drop_table("contact_attributes", schema="express_chat")
