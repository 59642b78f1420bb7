"""The warehouse model as SQLAlchemy Core metadata: the one description migrations and code share.

Tables are declared in the default schema (`settings.DEFAULT_SCHEMA`); a configured schema
replaces it at run time through `schema_translate_map`, so no SQL ever has a schema name formatted
into it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from etl_contacts.settings import DEFAULT_SCHEMA

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = sa.MetaData(schema=DEFAULT_SCHEMA, naming_convention=NAMING)
TS = sa.DateTime(timezone=True)


def _account() -> sa.Column:
    return sa.Column(
        "account", sa.Text, nullable=False, comment="Express-Chat account the row came from"
    )


def _contact_id() -> sa.Column:
    return sa.Column("contact_id", sa.Text, nullable=False, comment="The contact's source _id")


contacts = sa.Table(
    "contacts",
    metadata,
    _account(),
    _contact_id(),
    sa.Column("uuid", sa.Text, comment="Session uuid the platform gave the contact"),
    sa.Column("name", sa.Text, comment="Name the user provided (profile.userDetails)"),
    sa.Column("email", sa.Text, comment="Email, trimmed and lower-cased (HMAC in PII mode)"),
    sa.Column("email_domain", sa.Text, comment="Domain part of the email, kept in clear"),
    sa.Column("phone_e164", sa.Text, comment="Phone in E.164 (+prefix number); HMAC in PII mode"),
    sa.Column("channel", sa.Text, comment="website, whatsapp, facebook or telegram"),
    sa.Column("bot_id", sa.Text, comment="Bot the contact talked to on its channel (_bot)"),
    sa.Column("status", sa.Text, comment="Conversation status: OPEN, INPROGRESS, CLOSED, ..."),
    sa.Column("agent_id", sa.Text, comment="Agent assigned (_agentAssigned)"),
    sa.Column("is_online", sa.Boolean, comment="Online when last synced"),
    sa.Column("user_interacted", sa.Boolean, comment="The contact has interacted"),
    sa.Column("is_live_chat_active", sa.Boolean, comment="A live chat was active"),
    sa.Column("last_message_by", sa.Text, comment="Who sent the last message: user, bot, agent"),
    sa.Column("website_visits", sa.Integer, comment="Number of website visits"),
    sa.Column("has_ordered", sa.Boolean, comment="The contact has ordered (hasOrdered.status)"),
    sa.Column("last_order_at", TS, comment="Time of the last order (hasOrdered.lastAt)"),
    sa.Column("created_at", TS, nullable=False, comment="When the contact was created (source)"),
    sa.Column("updated_at", TS, comment="When the source last updated the contact"),
    sa.Column("last_seen_at", TS, comment="Last activity of the contact (source)"),
    sa.Column("raw", JSONB, nullable=False, comment="The whole source record, as received"),
    sa.Column("content_hash", sa.Text, nullable=False, comment="Hash of raw: unchanged = no write"),
    sa.Column("tracked_hash", sa.Text, nullable=False, comment="Hash of the history fields"),
    sa.Column("first_synced_at", TS, nullable=False, comment="When a sync first stored the row"),
    sa.Column("last_synced_at", TS, nullable=False, comment="When a sync last changed the row"),
    sa.Column("deleted_at", TS, comment="When the source stopped returning it (soft delete)"),
    sa.PrimaryKeyConstraint("account", "contact_id"),
    sa.Index(None, "account", "created_at"),
    sa.Index(None, "account", "last_seen_at"),
    comment="One row per Express-Chat contact: typed columns plus the raw record",
)

contact_tags = sa.Table(
    "contact_tags",
    metadata,
    _account(),
    _contact_id(),
    sa.Column("tag", sa.Text, nullable=False, comment="Tag name"),
    sa.PrimaryKeyConstraint("account", "contact_id", "tag"),
    comment="One row per tag of a contact; replaced with the contact",
)

contact_attributes = sa.Table(
    "contact_attributes",
    metadata,
    _account(),
    _contact_id(),
    sa.Column("key", sa.Text, nullable=False, comment="Attribute key"),
    sa.Column("value_text", sa.Text, comment="Value as text (JSON text for non-strings)"),
    sa.Column("value_json", JSONB, nullable=False, comment="Value as JSON, whatever its type"),
    sa.PrimaryKeyConstraint("account", "contact_id", "key"),
    comment="Custom attributes of a contact; replaced with the contact",
)

contact_segments = sa.Table(
    "contact_segments",
    metadata,
    _account(),
    _contact_id(),
    sa.Column("segment", sa.Text, nullable=False, comment="Segment id"),
    sa.PrimaryKeyConstraint("account", "contact_id", "segment"),
    comment="Segment membership of a contact; replaced with the contact",
)

contact_history = sa.Table(
    "contact_history",
    metadata,
    _account(),
    _contact_id(),
    sa.Column("valid_from", TS, nullable=False, comment="Start of this version"),
    sa.Column("valid_to", TS, comment="End of this version (NULL: current)"),
    sa.Column(
        "is_current", sa.Boolean, nullable=False, comment="This is the contact's version now"
    ),
    sa.Column("status", sa.Text, comment="Status in this version"),
    sa.Column("agent_id", sa.Text, comment="Agent in this version"),
    sa.Column("tags", sa.ARRAY(sa.Text), comment="Tags in this version"),
    sa.Column("name", sa.Text, comment="Name in this version"),
    sa.Column("email", sa.Text, comment="Email in this version"),
    sa.Column("phone_e164", sa.Text, comment="Phone in this version"),
    sa.Column("tracked_hash", sa.Text, nullable=False, comment="Hash of the tracked fields"),
    sa.PrimaryKeyConstraint("account", "contact_id", "valid_from"),
    comment="Versions of a contact's tracked fields; a new row only when one of them changes",
)

contact_rejects = sa.Table(
    "contact_rejects",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), comment="Surrogate key"),
    _account(),
    sa.Column("run_id", sa.Text, nullable=False, comment="Run that received the record"),
    sa.Column("contact_id", sa.Text, comment="The record's _id, when it had a usable one"),
    sa.Column(
        "reason",
        sa.Text,
        nullable=False,
        comment="Why: missing_id, unparseable_date, ... (malformed); older_than_stored (the "
        "stored row is newer), superseded_in_batch (a newer copy came in the same batch)",
    ),
    sa.Column("detail", sa.Text, nullable=False, comment="What exactly was wrong"),
    sa.Column("record", JSONB, nullable=False, comment="The whole record as received"),
    sa.Column("rejected_at", TS, nullable=False, server_default=sa.func.now(), comment="When"),
    sa.Column(
        "record_digest",
        sa.Text,
        nullable=False,
        comment="sha256 of the record's canonical JSON (its jsonb text): a content is kept once",
    ),
    sa.PrimaryKeyConstraint("id"),
    # a malformed record fetched every night is quarantined once, not once per fetch
    sa.Index(None, "account", "reason", "record_digest", unique=True),
    comment="Records not loaded (malformed, or older than the stored row), whole, with the "
    "reason, once per account, reason and content: nothing is dropped silently",
)

sync_runs = sa.Table(
    "sync_runs",
    metadata,
    sa.Column("run_id", sa.Text, comment="Dagster run id"),
    _account(),
    sa.Column("status", sa.Text, nullable=False, comment="running, success or failed"),
    sa.Column("windows", JSONB, nullable=False, comment="Windows the run was asked to load"),
    sa.Column("started_at", TS, nullable=False, comment="Start of the run"),
    sa.Column("finished_at", TS, comment="End of the run"),
    sa.Column("duration_seconds", sa.Float, comment="Wall time of the run"),
    *(
        sa.Column(name, sa.BigInteger, nullable=False, server_default="0", comment=text)
        for name, text in (
            ("inserted", "Contacts inserted"),
            ("updated", "Contacts updated"),
            ("unchanged", "Contacts received unchanged (no write)"),
            ("refused_older", "Records not written: older than the stored row or a newer copy"),
            ("rejected", "Records rejected"),
            ("deleted", "Contacts soft-deleted"),
            ("holes_repaired", "Contacts a completely read window missed, found by asking again"),
            ("requests", "HTTP requests made"),
            ("retries", "Requests retried"),
            ("pages", "Pages received"),
            ("records", "Records received"),
            ("duplicates", "Duplicate records dropped"),
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
    ),
    sa.Column(
        "ranges_combined",
        sa.Boolean,
        comment="The server was seen to AND a lastSeenAt range with a createdAt range (NULL: "
        "not known)",
    ),
    sa.Column("extract_stats", JSONB, comment="All extraction counters, retries by cause"),
    sa.Column("error", sa.Text, comment="Cause of failure, one line"),
    sa.Column(
        "timezone",
        sa.Text,
        comment="ETL_CONTACTS_TIMEZONE of the run: the zone of its days (NULL: before 0005)",
    ),
    sa.PrimaryKeyConstraint("run_id"),
    comment="One row per sync run: counters, duration, status",
)

sync_state = sa.Table(
    "sync_state",
    metadata,
    _account(),
    sa.Column("stream", sa.Text, nullable=False, comment="createdAt or lastSeenAt"),
    sa.Column("watermark", TS, nullable=False, comment="End of the last completely loaded window"),
    sa.Column("updated_at", TS, nullable=False, comment="When the watermark last moved"),
    sa.PrimaryKeyConstraint("account", "stream"),
    comment="Watermarks: how far each stream of each account is completely loaded",
)

sync_seen = sa.Table(
    "sync_seen",
    metadata,
    sa.Column("run_id", sa.Text, nullable=False, comment="Run that received the contact"),
    _account(),
    _contact_id(),
    sa.Column("created_at", TS, comment="The contact's createdAt (NULL for a rejected record)"),
    sa.Index(None, "run_id", "account", "created_at"),
    comment="Ids each running sync received, for soft deletes; emptied when the run ends",
    prefixes=["UNLOGGED"],
)

day_verifications = sa.Table(
    "day_verifications",
    metadata,
    _account(),
    sa.Column("day", sa.Date, nullable=False, comment="Local day (ETL_CONTACTS_TIMEZONE)"),
    sa.Column("day_start", TS, nullable=False, comment="Start of the day, in UTC"),
    sa.Column("day_end", TS, nullable=False, comment="End of the day, in UTC (exclusive)"),
    sa.Column(
        "verified_at",
        TS,
        nullable=False,
        comment="When the day's createdAt window was last read completely",
    ),
    sa.Column(
        "contacts_seen", sa.BigInteger, nullable=False, comment="Contacts that read returned"
    ),
    sa.Column(
        "deletions_found",
        sa.BigInteger,
        nullable=False,
        comment="Contacts that read found missing (deleted once a later run's look confirms)",
    ),
    sa.Column(
        "holes_repaired",
        sa.BigInteger,
        nullable=False,
        server_default="0",
        comment="Contacts that read missed and asking for them by themselves found (holes "
        "repaired)",
    ),
    sa.Column(
        "contacts_unaccounted",
        sa.BigInteger,
        nullable=False,
        server_default="0",
        comment="Contacts that read returned that were not stored live when its run ended (0: "
        "the day is whole in the table)",
    ),
    sa.Column("run_id", sa.Text, nullable=False, comment="Run that read it"),
    sa.PrimaryKeyConstraint("account", "day_start"),
    comment="Per account and day: when its createdAt window was last read completely, what it "
    "held, and the deletions it proved; the freshness promise is kept here",
)

missing_contacts = sa.Table(
    "missing_contacts",
    metadata,
    _account(),
    _contact_id(),
    sa.Column("created_at", TS, nullable=False, comment="createdAt as stored when missed"),
    sa.Column("last_seen_at", TS, comment="lastSeenAt as stored when missed"),
    sa.Column(
        "missing_since",
        TS,
        nullable=False,
        comment="When a run first missed it: its deleted_at once a later look confirms",
    ),
    sa.Column("run_id", sa.Text, nullable=False, comment="Run that first missed it"),
    sa.PrimaryKeyConstraint("account", "contact_id"),
    comment="Live contacts the source did not return when last asked: deleted only when a "
    "later run's look still does not find them, live again when any run receives them",
)

CONTACT_TABLES = ("contacts", "contact_tags", "contact_attributes", "contact_segments")
