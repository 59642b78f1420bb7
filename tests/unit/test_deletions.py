"""The rules of deleting: what looks like an outage, and how many one run may delete."""

from __future__ import annotations

import pytest

from etl_contacts.pipeline.deletions import DeletePolicy, is_suspect


@pytest.mark.parametrize(
    ("stored", "unseen", "suspect"),
    [
        (200, 0, False),
        (200, 67, False),  # a third of a day deleted: plausible, waits for its second look
        (200, 101, True),  # more than half
        (200, 200, True),  # an empty answer
        (4, 4, True),
        (2, 2, False),  # one or two contacts may well be gone: each still needs a second look
        (5, 3, True),
    ],
)
def test_a_read_lacking_most_of_its_stored_contacts_is_suspect(
    stored: int, unseen: int, suspect: bool
) -> None:
    assert is_suspect(stored, unseen) is suspect


@pytest.mark.parametrize(
    ("percent", "live", "most"), [(1, 4_000, 40), (1, 99, 0), (5, 1_000, 50), (100, 7, 7)]
)
def test_the_guard_allows_a_share_of_the_live_contacts(
    percent: float, live: int, most: int
) -> None:
    assert DeletePolicy(max_delete_percent=percent).deletable(live) == most
