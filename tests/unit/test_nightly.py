"""The freshness budget's choice of days: by recorded verification times, never by the calendar."""

from datetime import UTC, date, datetime, timedelta

from etl_contacts.pipeline.nightly import plan_nightly, staleness
from etl_contacts.settings import Freshness, days_between

FRESHNESS = Freshness(history_start=date(2024, 1, 1), reverify_days=7, lookback_days=3)
LAST = date(2024, 3, 10)  # 70 days of history


def test_never_verified_days_come_first_then_the_least_recently_verified() -> None:
    history = FRESHNESS.history(LAST)
    at = datetime(2024, 3, 11, tzinfo=UTC)
    verified = {day: at - timedelta(hours=n) for n, day in enumerate(history)}
    for day in (date(2024, 2, 1), date(2024, 1, 15)):
        del verified[day]
    plan = plan_nightly(LAST, LAST, verified=verified, freshness=FRESHNESS)
    assert len(plan.reverify) == 10  # ceil(70 days / 7)
    # the two never verified, then the eight verified longest ago (the latest days here)
    assert set(plan.reverify) == {date(2024, 2, 1), date(2024, 1, 15), *history[-9:-1]}
    assert LAST not in plan.reverify, "the run's own days are read anyway"
    assert plan.lookback_from == date(2024, 3, 8)


def test_running_the_nightly_budget_times_in_a_row_verifies_every_day() -> None:
    verified: dict[date, datetime] = {}
    now = datetime(2024, 3, 11, tzinfo=UTC)
    for night in range(FRESHNESS.reverify_days):
        plan = plan_nightly(LAST, LAST, verified=verified, freshness=FRESHNESS)
        now += timedelta(minutes=1)  # nights in a row: what matters is the recorded order
        for day in (*plan.reverify, LAST):
            verified[day] = now
        assert len(verified) == min(70, 1 + (night + 1) * 10)  # yesterday, and 10 a night
    result = staleness(verified, FRESHNESS.history(LAST))
    assert result.unverified == () and result.oldest is not None
    assert not result.older_than(timedelta(days=1), now)


def test_staleness_names_the_days_never_verified() -> None:
    history = days_between(date(2024, 1, 1), date(2024, 1, 5))
    old = datetime(2024, 1, 1, tzinfo=UTC)
    result = staleness(dict.fromkeys(history[1:], old), history)
    assert result.unverified == (date(2024, 1, 1),) and result.oldest is None
    assert result.older_than(timedelta(days=100), old)
    complete = staleness(dict.fromkeys(history, old), history)
    assert complete.oldest == old
    assert complete.older_than(timedelta(days=8), old + timedelta(days=9))
    assert not complete.older_than(timedelta(days=8), old + timedelta(days=7))
