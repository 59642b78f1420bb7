"""normalize(): every record ends in exactly one place (contacts, rejects, superseded, or counted
as an identical copy), and never raises."""

from __future__ import annotations

import hypothesis.strategies as st
import orjson
from hypothesis import given, settings

from etl_contacts.pipeline.transform import content_hash, normalize
from etl_contacts.sandbox.data import render

GOOD = render(9, 1, 1_700_000_000_000, 1_700_000_500_000, 1_700_000_500_000, 0)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
contact_like = st.fixed_dictionaries(
    {},
    optional={
        "_id": st.one_of(
            st.just(GOOD["_id"]),
            st.text(alphabet="0123456789abcdef", min_size=24, max_size=24),
            json_values,
        ),
        "createdAt": st.one_of(
            st.just(GOOD["createdAt"]), json_values, st.datetimes().map(lambda d: d.isoformat())
        ),
        "updatedAt": st.one_of(st.just(GOOD["updatedAt"]), json_values),
        "lastSeenAt": st.one_of(st.just(GOOD["lastSeenAt"]), json_values),
        "profile": st.one_of(st.just(GOOD["profile"]), json_values),
        "status": json_values,
        "websiteVisits": json_values,
        "hasOrdered": json_values,
        "segments": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(contact_like, json_values), max_size=8))
def test_each_record_lands_in_exactly_one_place(records: list[object]) -> None:
    frames = normalize(records, account="a")
    ids = [r.get("_id") for r in records if isinstance(r, dict)]
    loaded = set(frames.contacts["contact_id"])
    placed = len(frames.contacts) + len(frames.rejects) + len(frames.superseded)
    assert placed + frames.collapsed == len(records)
    assert loaded <= {i for i in ids if isinstance(i, str)}


def test_emails_are_trimmed_and_lowered_and_phones_are_e164() -> None:
    record = {
        **GOOD,
        "profile": {
            "userDetails": {
                "contact": {
                    "email": "  Ana.Silva@Example.COM ",
                    "phone": {"prefix": "+91", "number": "98765 43210"},
                }
            }
        },
    }
    row = normalize([record], account="a").contacts.iloc[0]
    assert row["email"] == "ana.silva@example.com"
    assert row["email_domain"] == "example.com"
    assert row["phone_e164"] == "+919876543210"


def test_nul_bytes_are_removed_and_the_contact_loaded() -> None:
    record = {
        **GOOD,
        "profile": {"userDetails": {"userProvidedName": "A\x00na", "tags": ["v\x00ip"]}},
    }
    frames = normalize([record], account="a")
    assert frames.contacts.iloc[0]["name"] == "Ana"
    assert list(frames.tags["tag"]) == ["vip"]
    assert "\\u0000" not in frames.contacts.iloc[0]["raw"]


def test_reasons() -> None:
    records = [
        "text",
        {"createdAt": GOOD["createdAt"]},
        {"_id": 12, "createdAt": GOOD["createdAt"]},
        {"_id": GOOD["_id"], "createdAt": "2024-13-45T00:00:00.000Z"},
        {"_id": GOOD["_id"], "createdAt": "3024-01-01T00:00:00.000Z"},
    ]
    reasons = list(normalize(records, account="a").rejects["reason"])
    assert reasons == [
        "not_an_object",
        "missing_id",
        "invalid_id",
        "unparseable_date",
        "future_date",
    ]


def test_the_newest_duplicate_wins() -> None:
    older = {**GOOD, "status": "OPEN", "updatedAt": "2020-01-01T00:00:00.000Z", "lastSeenAt": None}
    newer = {**GOOD, "status": "CLOSED"}
    frames = normalize([newer, older], account="a")
    assert list(frames.contacts["status"]) == ["CLOSED"]
    assert frames.collapsed == 0
    (superseded,) = frames.superseded.to_dict("records")
    assert superseded == {
        "account": "a",
        "contact_id": GOOD["_id"],
        "reason": "superseded_in_batch",
        "detail": "updatedAt 2020-01-01T00:00:00.000Z, lastSeenAt none: not newer than the copy "
        f"kept from the same batch (updatedAt {GOOD['updatedAt']}, "
        f"lastSeenAt {GOOD['lastSeenAt']})",
        "record": superseded["record"],
    }
    assert orjson.loads(superseded["record"]) == older


def test_identical_copies_are_counted_apart_from_differing_ones() -> None:
    same = [GOOD, dict(reversed(list(GOOD.items()))), GOOD]
    frames = normalize([*same, {**GOOD, "status": "CLOSED"}], account="a")
    # equally recent: the last received wins, as in the upsert, and the three copies differ
    assert list(frames.contacts["status"]) == ["CLOSED"] and frames.collapsed == 0
    assert len(frames.superseded) == 3
    frames = normalize(same, account="a")
    assert (len(frames.contacts), frames.collapsed, len(frames.superseded)) == (1, 2, 0)


def test_pii_mode_stores_keyed_hashes_and_scrubs_raw() -> None:
    frames = normalize([GOOD], account="a", pii_key=b"secret")
    row = frames.contacts.iloc[0]
    email = GOOD["profile"]["userDetails"]["contact"]["email"]
    assert row["email"] is None or len(row["email"]) == 64
    assert email is None or email.strip() not in row["raw"]
    assert '"phone"' not in row["raw"]


@settings(max_examples=200, deadline=None)
@given(contact_like, st.sampled_from([None, b"k" * 32]))
def test_content_hash_is_the_hash_normalize_stores(
    record: dict[str, object], key: bytes | None
) -> None:
    contacts = normalize([record], account="a", pii_key=key).contacts
    if len(contacts):
        assert content_hash(record, key) == contacts.iloc[0]["content_hash"]


def test_content_hash_of_nul_and_pii_records_matches_normalize() -> None:
    record = {**GOOD, "name": "A\x00na"}
    for key in (None, b"secret"):
        stored = normalize([record], account="a", pii_key=key).contacts.iloc[0]["content_hash"]
        assert content_hash(record, key) == stored
    assert content_hash(record, None) != content_hash(record, b"secret")
    assert content_hash(["not", "a", "contact"]) is None
