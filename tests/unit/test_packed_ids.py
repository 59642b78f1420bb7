"""PackedIds: the ids a doubtful window handed over, packed while it waits; a set all the same."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given

from etl_contacts.source.window.ids import PackedIds

object_ids = st.text(alphabet="0123456789abcdef", min_size=24, max_size=24)
# ids a server might send that only look like ObjectIds: upper case, hex with spaces in it
any_ids = st.one_of(
    object_ids,
    st.text(max_size=30),
    object_ids.map(str.upper),
    object_ids.map(lambda i: f"{i[:12]}  {i[14:]}"),
)


@given(st.sets(any_ids, max_size=200), st.lists(any_ids, max_size=50))
def test_packed_ids_hold_exactly_the_ids_given(held: set[str], asked: list[str]) -> None:
    packed = PackedIds(held)
    assert len(packed) == len(held)
    for record_id in [*held, *asked]:
        assert (record_id in packed) == (record_id in held)
