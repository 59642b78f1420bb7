"""Answers over time in the account's own days: each run records its time zone; the daily views
group by it (contact_daily_activity did by UTC day while partitions follow ETL_CONTACTS_TIMEZONE),
and contact_status_daily counts contacts per status per day from contact_history.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

READER = "express_chat_reader"  # the read-only group 0002 creates

# The time zone of an account's latest run that recorded one; UTC before any did. A view cannot
# read the process's environment, and the runs are where the configured zone was in force.
ZONES = """
    zones AS (
        SELECT DISTINCT ON (account) account, timezone FROM {schema}.sync_runs
        WHERE timezone IS NOT NULL ORDER BY account, started_at DESC
    )"""

ACTIVITY = """
    CREATE OR REPLACE VIEW {schema}.contact_daily_activity AS
    WITH {zones},
    live AS NOT MATERIALIZED (
        SELECT c.account, c.channel, c.created_at, c.last_seen_at,
               coalesce(z.timezone, 'UTC') AS timezone
        FROM {schema}.contacts c LEFT JOIN zones z USING (account)
        WHERE c.deleted_at IS NULL
    )
    SELECT account, day, channel,
           sum(created)::bigint AS new_contacts, sum(active)::bigint AS active_contacts
    FROM (
        SELECT account, (created_at AT TIME ZONE timezone)::date AS day, channel,
               1 AS created, 0 AS active
        FROM live
        UNION ALL
        SELECT account, (last_seen_at AT TIME ZONE timezone)::date, channel, 0, 1
        FROM live WHERE last_seen_at IS NOT NULL
    ) AS events
    GROUP BY account, day, channel
"""

UTC_ACTIVITY = """
    CREATE OR REPLACE VIEW {schema}.contact_daily_activity AS
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

# A contact counts, on a day, in the status of its version in force at the day's last instant:
# the version that began before the day's end and had not ended before it, i.e. the days from the
# local date of `valid_from` up to, not including, the local date of `valid_to`. Each version adds
# one on its first day and takes one away on its end's; a running sum over a grid of days gives
# the counts, so the history is read once, not once per day. Deleted contacts have no version in
# force after their deletion; a contact counts from its first known version.
STATUS_DAILY = """
    CREATE VIEW {schema}.contact_status_daily AS
    WITH {zones},
    versions AS (
        SELECT h.account, h.status, h.valid_from, h.valid_to,
               coalesce(z.timezone, 'UTC') AS timezone
        FROM {schema}.contact_history h LEFT JOIN zones z USING (account)
    ),
    changes AS (
        SELECT account, status, day, sum(delta) AS delta
        FROM (
            SELECT account, status, (valid_from AT TIME ZONE timezone)::date AS day, 1 AS delta
            FROM versions
            UNION ALL
            SELECT account, status, (valid_to AT TIME ZONE timezone)::date, -1
            FROM versions WHERE valid_to IS NOT NULL
        ) AS events
        GROUP BY account, status, day
    ),
    grid AS (
        SELECT s.account, s.status, d::date AS day
        FROM (
            SELECT c.account, c.status, min(c.day) AS first_day,
                   (now() AT TIME ZONE coalesce(z.timezone, 'UTC'))::date AS today
            FROM changes c LEFT JOIN zones z USING (account)
            GROUP BY c.account, c.status, z.timezone
        ) AS s
        CROSS JOIN LATERAL generate_series(
            s.first_day::timestamp, s.today::timestamp, interval '1 day'
        ) AS d
    ),
    counted AS (
        SELECT g.account, g.day, g.status,
               sum(coalesce(c.delta, 0)) OVER (
                   PARTITION BY g.account, g.status ORDER BY g.day
               )::bigint AS contacts
        FROM grid g
        LEFT JOIN changes c
          ON c.account = g.account AND c.status IS NOT DISTINCT FROM g.status AND c.day = g.day
    )
    SELECT account, day, status, contacts FROM counted WHERE contacts > 0
"""

COMMENTS = {
    "contact_daily_activity": {
        None: "Per day (the account's ETL_CONTACTS_TIMEZONE) and channel: contacts created, and "
        "contacts whose latest activity fell on that day",
        "day": "Day in the account's time zone (of its latest run; UTC before any)",
    },
    "contact_status_daily": {
        None: "Per account, day and status: how many contacts were in that status at the end of "
        "the day (from contact_history; days in the account's time zone)",
        "account": "Express-Chat account",
        "day": "Day in the account's time zone (of its latest run; UTC before any)",
        "status": "Conversation status (OPEN, INPROGRESS, REVIEW, ONHOLD, DEPENDANCY, CLOSED)",
        "contacts": "Contacts whose version in force at the end of the day had this status",
    },
}


def _quoted() -> str:
    context = op.get_context()
    return context.dialect.identifier_preparer.quote(context.version_table_schema)


def _comment(schema: str, view: str, column: str | None, text: str) -> None:
    target = f"VIEW {schema}.{view}" if column is None else f"COLUMN {schema}.{view}.{column}"
    literal = text.replace("'", "''")  # COMMENT takes no bound parameter
    op.execute(f"COMMENT ON {target} IS '{literal}'")


def upgrade() -> None:
    schema = _quoted()
    op.add_column(
        "sync_runs",
        sa.Column(
            "timezone",
            sa.Text(),
            comment="ETL_CONTACTS_TIMEZONE of the run: the zone of its days (NULL: before 0005)",
        ),
        schema=op.get_context().version_table_schema,
    )
    zones = ZONES.format(schema=schema)
    op.execute(ACTIVITY.format(schema=schema, zones=zones))
    op.execute(STATUS_DAILY.format(schema=schema, zones=zones))
    for view, comments in COMMENTS.items():
        for column, text in comments.items():
            _comment(schema, view, column, text)
    # 0002's default privileges cover it only when this runs as the role that ran 0002
    op.execute(f"GRANT SELECT ON {schema}.contact_status_daily TO {READER}")


def downgrade() -> None:
    schema = _quoted()
    op.execute(f"DROP VIEW {schema}.contact_status_daily")
    op.execute(UTC_ACTIVITY.format(schema=schema))
    _comment(
        schema,
        "contact_daily_activity",
        None,
        "Per UTC day and channel: contacts created, and contacts whose latest activity fell on "
        "that day",
    )
    _comment(schema, "contact_daily_activity", "day", "UTC day")
    op.drop_column("sync_runs", "timezone", schema=op.get_context().version_table_schema)
