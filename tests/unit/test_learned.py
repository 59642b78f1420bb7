"""The page size a run learns: from full pages only, robust to one record more or less, and
forgotten when a page shorter than it proves not to be the last."""

from __future__ import annotations

from etl_contacts.source.learned import Learned


def test_the_page_size_is_the_most_common_full_length() -> None:
    learned = Learned()
    for length in (19, 20):  # a record hidden from the first full page
        learned.confirm_full(length)
    assert learned.page_size is None, "two full pages are not enough evidence"
    for length in (21, 20):  # one with a duplicate injected
        learned.confirm_full(length)
    assert learned.page_size == 20
    assert learned.is_short(18)
    assert not learned.is_short(19), "one short of full is what a page that lost a record is"


def test_a_size_that_changed_is_learned_again() -> None:
    learned = Learned()
    for _ in range(3):
        learned.confirm_full(20)
    learned.forget_page_size()
    assert learned.page_size is None
    assert not learned.is_short(12), "without a page size nothing looks like the last page"
    assert not learned.looks_short(12), "nor to a reader that proves it, before any page"
    learned.saw_page(20)
    assert not learned.is_short(12)
    assert learned.looks_short(12), "to a reader that proves it, the longest page stands in"
    assert not learned.looks_short(19)
    for _ in range(3):
        learned.confirm_full(13)
    assert learned.page_size == 13
