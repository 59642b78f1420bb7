"""Pure pieces of the sync loop: day windows and the gap-free watermark."""

from datetime import UTC, date, datetime

from etl_contacts.sync import _GapFree, day_windows


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
    gap_free = _GapFree(windows)
    assert gap_free.complete(windows[2]) is None
    assert gap_free.complete(windows[0]) == windows[0].end
    assert gap_free.complete(windows[1]) == windows[2].end
    assert gap_free.complete(windows[3]) == windows[3].end
