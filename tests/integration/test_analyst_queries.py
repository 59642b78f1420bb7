"""The README's answers over time, run as written on a warehouse whose answers are known.

Three contacts change status on days chosen around midnight in São Paulo (UTC-3), so that a
view grouping by UTC day gives a different answer from one grouping by the account's day.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from etl_contacts.pipeline.transform import normalize
from etl_contacts.sandbox.data import render
from etl_contacts.sandbox.vocabulary import STATUSES
from etl_contacts.timestamps import to_ms
from etl_contacts.warehouse import Warehouse

ZONE = "America/Sao_Paulo"
D0 = date(2025, 3, 10)
ACCOUNT = "default"


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    """A local time `day` days after D0, in UTC."""
    local = datetime(D0.year, D0.month, D0.day, hour, minute, tzinfo=ZoneInfo(ZONE))
    return (local + timedelta(days=day)).astimezone(UTC)


# contact index -> its versions in order: (when, status, agent)
VERSIONS = {
    1: [
        (_at(0, 10), "OPEN", "triage"),
        (_at(1, 12), "CLOSED", "ana"),
        (_at(2, 9), "OPEN", "triage"),
        (_at(2, 11), "CLOSED", "bo"),
    ],
    2: [(_at(0, 23, 30), "INPROGRESS", "triage"), (_at(3, 8), "CLOSED", "ana")],
    3: [(_at(1, 8), "CLOSED", "carla")],
}


def _record(index: int, version: int) -> dict[str, object]:
    when, status, agent = VERSIONS[index][version]
    created = to_ms(VERSIONS[index][0][0])
    record = render(11, index, created, to_ms(when), to_ms(when), STATUSES.index(status))
    record["_agentAssigned"] = agent
    return record


def _readme_queries(repo_root: Path) -> dict[str, str]:
    """The README's SQL blocks, by the name on their first line (`-- name: ...`)."""
    text = (repo_root / "README.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", text, flags=re.DOTALL)
    return {m.group(1): block for block in blocks if (m := re.match(r"-- ([a-z ]+):", block))}


@pytest.fixture
def history(database_url: str) -> Warehouse:
    warehouse = Warehouse(database_url)
    warehouse.migrate()
    warehouse.begin_run(
        run_id="r", account=ACCOUNT, started_at=datetime.now(UTC), windows=[], timezone=ZONE
    )
    versions = sorted(
        (when, index, n) for index, rows in VERSIONS.items() for n, (when, *_) in enumerate(rows)
    )
    for _, index, n in versions:  # one batch per change, in the order they happened
        frames = normalize([_record(index, n)], account=ACCOUNT)
        assert frames.rejects.empty
        warehouse.load(frames, run_id="r", account=ACCOUNT)
    return warehouse


def _rows(warehouse: Warehouse, query: str) -> list[tuple[object, ...]]:
    with warehouse.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(query))]


def _day(value: object) -> date:
    assert isinstance(value, date), value
    return value


def test_the_readme_names_its_three_answers(repo_root: Path) -> None:
    assert {"status per day", "time open", "who closed"} <= set(_readme_queries(repo_root))


def test_status_per_day_counts_each_contact_in_its_status_at_the_end_of_the_local_day(
    history: Warehouse, repo_root: Path
) -> None:
    query = _readme_queries(repo_root)["status per day"]
    days = [D0 + timedelta(days=n) for n in range(4)]
    found = _rows(history, query.replace("current_date - 30", "'2025-01-01'"))
    assert [row for row in found if row[0] in days] == [
        (days[0], "INPROGRESS", 1),  # contact 2 at 23:30 local: 02:30 UTC the next day
        (days[0], "OPEN", 1),
        (days[1], "CLOSED", 2),
        (days[1], "INPROGRESS", 1),
        (days[2], "CLOSED", 2),  # contact 1 opened again at 9:00 and closed at 11:00
        (days[2], "INPROGRESS", 1),
        (days[3], "CLOSED", 3),
    ]
    assert min(_day(row[0]) for row in found) == days[0]
    assert max(_day(row[0]) for row in found) == datetime.now(ZoneInfo(ZONE)).date()


def test_time_open_runs_from_each_opening_to_the_closing_that_follows(
    history: Warehouse, repo_root: Path
) -> None:
    found = _rows(history, _readme_queries(repo_root)["time open"])
    ids = {index: _record(index, 0)["_id"] for index in VERSIONS}
    assert [(row[1], row[2], row[3], row[4]) for row in found] == sorted(
        [
            (ids[1], _at(0, 10), _at(1, 12), timedelta(hours=26)),
            (ids[1], _at(2, 9), _at(2, 11), timedelta(hours=2)),
            (ids[2], _at(0, 23, 30), _at(3, 8), timedelta(days=2, hours=8, minutes=30)),
        ]
    )


def test_who_closed_counts_the_agent_on_each_closing_version(
    history: Warehouse, repo_root: Path
) -> None:
    assert _rows(history, _readme_queries(repo_root)["who closed"]) == [
        (ACCOUNT, "ana", 2),
        (ACCOUNT, "bo", 1),
    ]


def test_daily_activity_groups_by_the_accounts_day(history: Warehouse) -> None:
    rows = _rows(
        history,
        "SELECT day, sum(new_contacts)::int, sum(active_contacts)::int "
        "FROM express_chat.contact_daily_activity GROUP BY day ORDER BY day",
    )
    days = [D0 + timedelta(days=n) for n in range(4)]
    # created: contacts 1 and 2 on day 0 (2 at 23:30 local), 3 on day 1; last active: 3 on
    # day 1, 1 on day 2, 2 on day 3
    assert rows == [(days[0], 2, 0), (days[1], 1, 1), (days[2], 0, 1), (days[3], 0, 1)]
