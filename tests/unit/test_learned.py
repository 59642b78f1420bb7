"""The page size a run learns: from full pages only, robust to one record more or less,
forgotten when a page shorter than it proves not to be the last, and per kind of query."""

from __future__ import annotations

from etl_contacts.source.learned import Learned

ONE = frozenset({"createdAt"})
TWO = frozenset({"createdAt", "lastSeenAt"})


def test_the_page_size_is_the_most_common_full_length() -> None:
    learned = Learned()
    for length in (19, 20):  # a record hidden from the first full page
        learned.confirm_full(length, ONE)
    assert learned.page_size is None, "two full pages are not enough evidence"
    for length in (21, 20):  # one with a duplicate injected
        learned.confirm_full(length, ONE)
    assert learned.page_size == 20
    assert learned.is_short(18, ONE)
    assert not learned.is_short(19, ONE), "one short of full is what a page that lost a record is"


def test_a_size_that_changed_is_learned_again() -> None:
    learned = Learned()
    for _ in range(3):
        learned.confirm_full(20, ONE)
    learned.forget_page_size(ONE)
    assert learned.page_size is None
    assert not learned.is_short(12, ONE), "without a page size nothing looks like the last page"
    assert not learned.looks_short(12, ONE), "nor to a reader that proves it, before any page"
    learned.saw_page(20, ONE)
    assert not learned.is_short(12, ONE)
    assert learned.looks_short(12, ONE), "to a reader that proves it, the longest page stands in"
    assert not learned.looks_short(19, ONE)
    for _ in range(3):
        learned.confirm_full(13, ONE)
    assert learned.page_size == 13


def test_each_kind_of_query_has_its_own_page_size_once_confirmed() -> None:
    """A server may answer a query with two date ranges from another index, in pages of
    another length: no kind's size stands in for another's, only the longest answer of any
    does, for a kind that has none yet, where the next page proves the end anyway."""
    learned = Learned()
    for _ in range(4):
        learned.confirm_full(20, ONE)
    learned.saw_page(20, ONE)
    assert learned.size_of(TWO) is None and not learned.is_short(7, TWO)
    assert learned.looks_short(7, TWO), "the longest answer of any stands in, to be proven"
    learned.saw_page(7, TWO)
    assert learned.longest_of(TWO) == 7 and not learned.looks_short(7, TWO)
    for _ in range(3):
        learned.confirm_full(7, TWO)
    assert (learned.size_of(ONE), learned.size_of(TWO)) == (20, 7)
    assert learned.is_short(5, TWO) and not learned.is_short(7, TWO)
    assert learned.is_short(7, ONE)
    assert learned.describe()["page_size"] == "20 with createdAt; 7 with createdAt and lastSeenAt"
