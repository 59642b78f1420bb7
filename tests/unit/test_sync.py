"""Pure pieces of the sync loop: the windows of a run, the gap-free watermark."""

from datetime import UTC, date, datetime, timedelta

from etl_contacts.pipeline.gap_free import GapFree
from etl_contacts.pipeline.sync import day_windows


def test_day_windows_cover_local_days_in_utc_each_contact_once() -> None:
    windows = day_windows(date(2024, 3, 30), date(2024, 3, 31), "Europe/Berlin")
    assert [w.field for w in windows] == ["createdAt", "createdAt", "lastSeenAt"]
    assert windows[0].start == datetime(2024, 3, 29, 23, tzinfo=UTC)
    # 31 March 2024 is 23 hours long in Berlin (the clocks go forward)
    assert windows[1].start == datetime(2024, 3, 30, 23, tzinfo=UTC)
    assert windows[1].end == datetime(2024, 3, 31, 22, tzinfo=UTC)
    # contacts active in those days, created outside them (the others are the createdAt windows')
    active = windows[2]
    assert (active.start, active.end) == (windows[0].start, windows[1].end)
    assert active.created_outside == ((windows[0].start, windows[1].end),)


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
    windows = day_windows(date(2024, 1, 1), date(2024, 1, 3), "UTC")
    *created, active = windows
    gap_free = GapFree(windows)
    # contacts active in those days but created in them are left to the createdAt windows
    assert gap_free.complete(active) == {}
    assert gap_free.complete(created[0]) == {
        "createdAt": created[0].end,
        "lastSeenAt": created[0].end,
    }
    assert gap_free.complete(created[2]) == {}
    assert gap_free.complete(created[1]) == {"createdAt": active.end, "lastSeenAt": active.end}


def test_a_nightly_run_reverifies_older_days_and_rereads_recent_activity_once() -> None:
    windows = day_windows(
        date(2024, 1, 10),
        date(2024, 1, 10),
        "UTC",
        reverify=[date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 6)],
        active_from=date(2024, 1, 8),
    )
    *created, active = windows
    assert [w.start.day for w in created] == [2, 3, 6, 10]
    assert (active.start, active.end) == (
        datetime(2024, 1, 8, tzinfo=UTC),
        datetime(2024, 1, 11, tzinfo=UTC),
    )
    # contacts created on a day read by createdAt are left out of the activity window
    day = timedelta(days=1)
    assert active.created_outside == (
        (created[0].start, created[1].end),
        (created[2].start, created[2].start + day),
        (created[3].start, created[3].start + day),
    )
