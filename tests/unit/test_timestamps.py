"""Milliseconds exactly: a stamp read a millisecond early moves a keyset cursor and a range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etl_contacts.timestamps import EPOCH, format_ms, parse_ms, to_ms

MILLIS = st.integers(min_value=0, max_value=7_258_118_400_000)  # 1970 to 2200


def test_a_stamp_the_float_product_rounds_down_is_read_exactly() -> None:
    assert parse_ms("2004-04-17T21:43:16.080Z") == 1_082_238_196_080


@given(MILLIS)
def test_format_and_parse_are_inverse_to_the_millisecond(millis: int) -> None:
    text = format_ms(millis)
    assert parse_ms(text) == millis
    assert datetime.fromisoformat(text) == EPOCH + timedelta(milliseconds=millis)


@given(MILLIS)
def test_to_ms_counts_whole_milliseconds_since_the_epoch(millis: int) -> None:
    assert to_ms(EPOCH + timedelta(milliseconds=millis)) == millis
    assert to_ms(EPOCH + timedelta(milliseconds=millis, microseconds=999)) == millis


def test_an_offset_is_converted_to_utc() -> None:
    assert parse_ms("2024-05-01T12:00:00.000+02:00") == to_ms(datetime(2024, 5, 1, 10, tzinfo=UTC))


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00.000+05:30", "9999-12-31T23:59:59.999-05:00"])
def test_a_moment_outside_years_1_to_9999_in_utc_is_no_date(text: str) -> None:
    """PostgreSQL's drivers read back only those years: stored, such a moment failed the load."""
    assert parse_ms(text) is None


def test_the_first_and_last_milliseconds_of_those_years_are_dates() -> None:
    assert parse_ms("0001-01-01T00:00:00.000Z") == to_ms(datetime(1, 1, 1, tzinfo=UTC))
    assert parse_ms("9999-12-31T23:59:59.999Z") == to_ms(
        datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)
    )
