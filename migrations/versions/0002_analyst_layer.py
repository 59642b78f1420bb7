"""Analyst layer: views contacts_current and contact_daily_activity, the read-only role.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

READER = "express_chat_reader"


def _names() -> tuple[str, str]:
    """The configured schema and the reader role, quoted for SQL."""
    context = op.get_context()
    quote = context.dialect.identifier_preparer.quote
    return quote(context.version_table_schema), quote(READER)


def upgrade() -> None:
    schema, reader = _names()
    op.execute(
        f"CREATE VIEW {schema}.contacts_current AS "
        f"SELECT * FROM {schema}.contacts WHERE deleted_at IS NULL"
    )
    op.execute(
        f"""
        CREATE VIEW {schema}.contact_daily_activity AS
        SELECT account, day, channel,
               sum(created)::bigint AS new_contacts, sum(active)::bigint AS active_contacts
        FROM (
            SELECT account, (created_at AT TIME ZONE 'UTC')::date AS day, channel,
                   1 AS created, 0 AS active
            FROM {schema}.contacts WHERE deleted_at IS NULL
            UNION ALL
            SELECT account, (last_seen_at AT TIME ZONE 'UTC')::date, channel, 0, 1
            FROM {schema}.contacts WHERE deleted_at IS NULL AND last_seen_at IS NOT NULL
        ) AS events
        GROUP BY account, day, channel
        """
    )
    comments = {
        "contacts_current": "Contacts the source still returns (deleted_at IS NULL)",
        "contact_daily_activity": "Per UTC day and channel: contacts created, and contacts "
        "whose latest activity fell on that day",
    }
    for view, text in comments.items():
        op.execute(f"COMMENT ON VIEW {schema}.{view} IS '{text}'")
    op.execute(
        f"COMMENT ON COLUMN {schema}.contact_daily_activity.account IS 'Express-Chat account'"
    )
    op.execute(f"COMMENT ON COLUMN {schema}.contact_daily_activity.day IS 'UTC day'")
    op.execute(f"COMMENT ON COLUMN {schema}.contact_daily_activity.channel IS 'Channel'")
    op.execute(
        f"COMMENT ON COLUMN {schema}.contact_daily_activity.new_contacts IS "
        "'Contacts created that day'"
    )
    op.execute(
        f"COMMENT ON COLUMN {schema}.contact_daily_activity.active_contacts IS "
        "'Contacts whose last activity was that day'"
    )
    op.execute(
        f"""
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
        DO $$ BEGIN
            CREATE ROLE {reader} NOLOGIN;
        EXCEPTION WHEN duplicate_object THEN NULL;
        END $$;
        GRANT USAGE ON SCHEMA {schema} TO {reader};
        GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {reader};
        ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {reader};
        """
    )


def downgrade() -> None:
    schema, reader = _names()
    op.execute(
        f"""
        ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE SELECT ON TABLES FROM {reader};
        REVOKE SELECT ON ALL TABLES IN SCHEMA {schema} FROM {reader};
        REVOKE USAGE ON SCHEMA {schema} FROM {reader};
        DROP VIEW {schema}.contact_daily_activity;
        DROP VIEW {schema}.contacts_current;
        """
    )
