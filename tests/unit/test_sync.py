"""Pure pieces of the sync loop: day windows, the gap-free watermark, repeated records."""

from datetime import UTC, date, datetime, timedelta

from etl_contacts.run_windows import CLOCK_MARGIN, GapFree, Repeats
from etl_contacts.source import RecordsBatch
from etl_contacts.sync import day_windows
from etl_contacts.timestamps import format_ms, to_ms


def test_day_windows_cover_local_days_in_utc() -> None:
    windows = day_windows(date(2024, 3, 30), date(2024, 3, 31), "Europe/Berlin")
    assert [w.field for w in windows] == ["createdAt", "lastSeenAt"] * 2
    assert windows[0].start == datetime(2024, 3, 29, 23, tzinfo=UTC)
    # 31 March 2024 is 23 hours long in Berlin (the clocks go forward)
    assert windows[2].start == datetime(2024, 3, 30, 23, tzinfo=UTC)
    assert windows[2].end == datetime(2024, 3, 31, 22, tzinfo=UTC)


def test_the_watermark_follows_only_the_gap_free_prefix() -> None:
    windows = [
        w for w in day_windows(date(2024, 1, 1), date(2024, 1, 4), "UTC") if w.field == "createdAt"
    ]
    gap_free = GapFree(windows)
    assert gap_free.complete(windows[2]) == {}
    assert gap_free.complete(windows[0]) == {"createdAt": windows[0].end}
    assert gap_free.complete(windows[1]) == {"createdAt": windows[2].end}
    assert gap_free.complete(windows[3]) == {"createdAt": windows[3].end}


def test_the_last_seen_watermark_waits_for_the_created_one() -> None:
    created, seen = (
        [w for w in day_windows(date(2024, 1, 1), date(2024, 1, 3), "UTC") if w.field == f]
        for f in ("createdAt", "lastSeenAt")
    )
    gap_free = GapFree([*created, *seen])
    # lastSeenAt copies of contacts created on those days were left to the createdAt windows
    assert gap_free.complete(seen[0]) == {}
    assert gap_free.complete(seen[1]) == {}
    assert gap_free.complete(created[0]) == {"createdAt": created[0].end, "lastSeenAt": seen[0].end}
    assert gap_free.complete(created[1]) == {"createdAt": created[1].end, "lastSeenAt": seen[1].end}
    assert gap_free.complete(created[2]) == {"createdAt": created[2].end}
    assert gap_free.complete(seen[2]) == {"lastSeenAt": seen[2].end}


def _record(created: datetime, touched: datetime, **overrides: object) -> dict[str, object]:
    record: dict[str, object] = {
        "_id": "a" * 24,
        "createdAt": format_ms(to_ms(created)),
        "updatedAt": format_ms(to_ms(touched)),
        "lastSeenAt": format_ms(to_ms(touched)),
    }
    return {**record, **overrides}


def test_a_last_seen_copy_of_a_record_the_run_creates_is_skipped_only_when_untouched() -> None:
    windows = day_windows(date(2024, 1, 1), date(2024, 1, 3), "UTC")
    started = datetime(2024, 1, 10, tzinfo=UTC)
    repeats = Repeats(windows, started)
    seen_window = next(w for w in windows if w.field == "lastSeenAt")
    inside, before = datetime(2024, 1, 2, 5, tzinfo=UTC), datetime(2023, 12, 31, tzinfo=UTC)
    quiet, busy = datetime(2024, 1, 3, tzinfo=UTC), started - CLOCK_MARGIN + timedelta(seconds=1)
    copy = _record(inside, quiet)
    kept = [
        _record(before, quiet),  # created before the run's days: no createdAt window has it
        _record(inside, busy),  # touched as the run began: may be newer than the other copy
        _record(inside, quiet, updatedAt=None),  # cannot tell when it was touched
        _record(inside, quiet, createdAt="not a date"),
        "not an object",
    ]
    batch = RecordsBatch(seen_window, [copy, *kept])
    assert repeats.fresh(batch) == kept
    created_window = next(w for w in windows if w.field == "createdAt")
    assert repeats.fresh(RecordsBatch(created_window, [copy])) == [copy]
    only_seen = Repeats([w for w in windows if w.field == "lastSeenAt"], started)
    assert only_seen.fresh(batch) == [copy, *kept]
