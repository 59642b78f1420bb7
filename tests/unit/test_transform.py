"""normalize(): every record ends in exactly one place (contacts, rejects, superseded, or counted
as an identical copy), and never raises."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import hypothesis.strategies as st
import orjson
from hypothesis import given, settings

from etl_contacts.pipeline.transform import content_hash, normalize
from etl_contacts.sandbox.data import render

GOOD = render(9, 1, 1_700_000_000_000, 1_700_000_500_000, 1_700_000_500_000, 0)
PII_KEYS = st.sampled_from([None, b"k" * 32])

# Anything at all, most of it no contact: normalize must place it and never raise.
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

# A valid record, as transform.py defines one: an object whose `_id` is 24 lower-case hex
# digits, whose createdAt is an ISO 8601 date not in the future (so are updatedAt and lastSeenAt
# when not null), and which can be stored as JSON (no integer beyond 64 bits, no lone surrogate:
# hypothesis' text has none). Everything else may be any JSON at all, NUL bytes included.
DATE_FIELDS = ("createdAt", "updatedAt", "lastSeenAt")
text = st.text(max_size=20)
storable_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True),
    text,
)
storable = st.recursive(
    storable_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=6,
)
object_ids = st.text(alphabet="0123456789abcdef", min_size=24, max_size=24)
# a few ids drawn often, so that batches hold several copies of one contact
shared_ids = st.sampled_from([f"6650c0de{n:016x}" for n in range(3)])


def _naive(year: int, month: int, day: int) -> datetime:
    """A UTC moment without its zone: hypothesis takes naive bounds."""
    return datetime(year, month, day, tzinfo=UTC).replace(tzinfo=None)


def _iso(moment: datetime, precision: str, zone: str) -> str:
    return moment.isoformat(timespec=precision) + zone


def _dates(low: datetime, high: datetime) -> st.SearchStrategy[str]:
    """ISO 8601 texts of moments in [low, high], as the API writes them and as others might."""
    return st.one_of(
        st.builds(
            _iso,
            st.datetimes(min_value=low, max_value=high),
            st.sampled_from(["seconds", "milliseconds", "microseconds"]),
            st.sampled_from(["Z", "+00:00", "+05:30", "-08:00", ""]),
        ),
        st.dates(min_value=low.date(), max_value=high.date()).map(date.isoformat),
    )


past_dates = _dates(_naive(1, 1, 2), _naive(2025, 12, 31))
# more than the day of tolerance ahead, whatever the zone
future_dates = _dates(
    datetime.now(UTC).replace(tzinfo=None) + timedelta(days=3), _naive(9999, 12, 30)
)
emails = st.one_of(st.emails(), text, st.none())
phones = st.fixed_dictionaries(
    {},
    optional={
        "prefix": st.one_of(st.from_regex(r"\+?[0-9]{1,3}", fullmatch=True), storable),
        "number": st.one_of(st.from_regex(r"[0-9 ()+-]{4,16}", fullmatch=True), storable),
    },
)
profiles = st.fixed_dictionaries(
    {},
    optional={
        "userDetails": st.fixed_dictionaries(
            {},
            optional={
                "userProvidedName": st.one_of(text, storable),
                "contact": st.fixed_dictionaries(
                    {}, optional={"email": emails, "phone": st.one_of(phones, storable)}
                ),
                "tags": st.one_of(st.lists(st.one_of(text, storable), max_size=4), storable),
                "attributes": st.one_of(
                    st.lists(
                        st.fixed_dictionaries(
                            {}, optional={"key": st.one_of(text, storable), "value": storable}
                        ),
                        max_size=4,
                    ),
                    storable,
                ),
            },
        )
    },
)
# keys that cannot become a date field once NUL bytes are removed from the record
other_keys = text.filter(lambda key: key.replace("\x00", "") not in ("_id", *DATE_FIELDS))
valid_records = st.builds(
    lambda extra, fields: {**extra, **fields},
    st.dictionaries(other_keys, storable, max_size=3),
    st.fixed_dictionaries(
        {"_id": st.one_of(object_ids, shared_ids), "createdAt": past_dates},
        optional={
            "updatedAt": st.none() | past_dates,
            "lastSeenAt": st.none() | past_dates,
            "profile": st.one_of(st.just(GOOD["profile"]), profiles, storable),
            "status": st.one_of(st.sampled_from(["OPEN", "CLOSED"]), storable),
            "_agentAssigned": st.one_of(object_ids, storable),
            "websiteVisits": storable,
            "hasOrdered": st.one_of(
                st.fixed_dictionaries(
                    {"status": storable, "lastAt": st.one_of(past_dates, future_dates, storable)}
                ),
                storable,
            ),
            "segments": st.one_of(st.lists(st.one_of(text, storable), max_size=4), storable),
            "isOnline": storable,
            "channel": storable,
        },
    ),
)

# An invalid record, with the reason it must be rejected for: a valid one with exactly one defect.
# integers JSON can store: a larger one is rejected as unserializable, before any date is read
storable_integers = st.integers(min_value=-(2**63), max_value=2**64 - 1)
not_dates = st.one_of(
    st.booleans(),
    storable_integers,
    st.floats(allow_nan=True),
    st.lists(storable, max_size=3),
    st.dictionaries(text, storable, max_size=3),
    st.text(max_size=9),  # too short for a date
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz :", min_size=10, max_size=30),
    st.sampled_from(
        [
            "2024-02-30T00:00:00.000Z",
            "2024-13-01T00:00:00.000Z",
            "2024-05-01T24:00:00.000Z",
            "01/05/2024 10:00",
            "yesterday at noon",
        ]
    ),
)
bad_ids = st.one_of(
    st.booleans(),
    storable_integers,
    st.floats(allow_nan=True),
    st.lists(storable, max_size=3),
    st.dictionaries(text, storable, min_size=1, max_size=3),
    object_ids.map(lambda i: "A" + i[1:].upper()),  # upper case
    st.text(alphabet="0123456789abcdef", max_size=40).filter(lambda i: len(i) != 24),
    text.filter(lambda i: len(i) != 24 or any(c not in "0123456789abcdef" for c in i)),
)
unstorable = st.one_of(
    st.integers(min_value=2**64),
    st.integers(max_value=-(2**63) - 1),
    st.sampled_from(["\ud800", "a\udfffb"]),
)


def _id(record: object) -> str:
    """The `_id` of a record generated valid: an object whose `_id` is a string."""
    assert isinstance(record, dict), record
    identifier = record["_id"]
    assert isinstance(identifier, str), record
    return identifier


def _without(record: dict[str, object], key: str) -> dict[str, object]:
    return {k: v for k, v in record.items() if k != key}


invalid_records = st.one_of(
    st.tuples(
        st.one_of(storable_scalars, st.lists(storable, max_size=3)), st.just("not_an_object")
    ),
    st.tuples(valid_records.map(lambda r: _without(r, "_id")), st.just("missing_id")),
    st.tuples(valid_records.map(lambda r: {**r, "_id": None}), st.just("missing_id")),
    st.tuples(
        st.builds(lambda r, v: {**r, "_id": v}, valid_records, bad_ids), st.just("invalid_id")
    ),
    st.tuples(
        st.builds(lambda r, v: {**r, "broken": [v]}, valid_records, unstorable),
        st.just("unserializable"),
    ),
    st.tuples(valid_records.map(lambda r: _without(r, "createdAt")), st.just("unparseable_date")),
    st.tuples(
        st.builds(
            lambda r, field, v: {**r, field: v},
            valid_records,
            st.sampled_from(DATE_FIELDS),
            not_dates,
        ),
        st.just("unparseable_date"),
    ),
    st.tuples(
        st.builds(
            lambda r, field, v: {**r, field: v},
            valid_records,
            st.sampled_from(DATE_FIELDS),
            future_dates,
        ),
        st.just("future_date"),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(contact_like, json_values), max_size=8))
def test_any_input_is_placed_once_and_never_raises(records: list[object]) -> None:
    frames = normalize(records, account="a")
    ids = [r.get("_id") for r in records if isinstance(r, dict)]
    loaded = set(frames.contacts["contact_id"])
    placed = len(frames.contacts) + len(frames.rejects) + len(frames.superseded)
    assert placed + frames.collapsed == len(records)
    assert loaded <= {i for i in ids if isinstance(i, str)}


@settings(max_examples=200, deadline=None)
@given(st.lists(valid_records, min_size=1, max_size=6), PII_KEYS)
def test_valid_records_are_all_loaded_one_row_per_contact(
    records: list[dict[str, object]], key: bytes | None
) -> None:
    frames = normalize(records, account="a", pii_key=key)
    ids = [_id(r) for r in records]
    assert list(frames.rejects["reason"]) == []
    assert sorted(frames.contacts["contact_id"]) == sorted(set(ids))
    assert len(frames.superseded) + frames.collapsed == len(ids) - len(set(ids))
    for contact_id, kept in zip(
        frames.contacts["contact_id"], frames.contacts["content_hash"], strict=True
    ):
        copies = {content_hash(r, key) for r in records if r["_id"] == contact_id}
        assert kept in copies, "the row kept is one of the copies received"


@settings(max_examples=300, deadline=None)
@given(invalid_records, PII_KEYS)
def test_an_invalid_record_is_rejected_with_its_reason(
    invalid: tuple[object, str], key: bytes | None
) -> None:
    record, reason = invalid
    frames = normalize([record], account="a", pii_key=key)
    assert frames.contacts.empty
    assert frames.superseded.empty
    assert frames.collapsed == 0
    assert list(frames.rejects["reason"]) == [reason]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.tuples(valid_records, st.none()), invalid_records), min_size=1, max_size=8
    ),
    PII_KEYS,
)
def test_valid_and_invalid_records_each_land_in_exactly_one_place(
    batch: list[tuple[object, str | None]], key: bytes | None
) -> None:
    frames = normalize([record for record, _ in batch], account="a", pii_key=key)
    valid_ids = [_id(record) for record, reason in batch if reason is None]
    assert Counter(frames.rejects["reason"]) == Counter(r for _, r in batch if r is not None)
    assert sorted(frames.contacts["contact_id"]) == sorted(set(valid_ids))
    assert len(frames.superseded) + frames.collapsed == len(valid_ids) - len(set(valid_ids))
    assert set(frames.superseded["reason"]) <= {"superseded_in_batch"}


@settings(max_examples=200, deadline=None)
@given(valid_records, PII_KEYS)
def test_content_hash_is_the_hash_normalize_stores(
    record: dict[str, object], key: bytes | None
) -> None:
    contacts = normalize([record], account="a", pii_key=key).contacts
    assert list(contacts["contact_id"]) == [record["_id"]]
    assert content_hash(record, key) == contacts.iloc[0]["content_hash"]


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


def test_a_phone_given_as_one_text_is_e164_only_with_its_country_code() -> None:
    records = [
        {**GOOD, "_id": f"{n:024x}", "profile": {"userDetails": {"contact": {"phone": phone}}}}
        for n, phone in enumerate([" +91 98765-43210", "98765 43210"])
    ]
    phones = normalize(records, account="a").contacts["phone_e164"]
    assert phones.iloc[0] == "+919876543210"
    assert phones.isna().iloc[1]


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
        {**GOOD, "updatedAt": "0001-01-01T00:00:00.000+05:30"},  # in year 0 in UTC
        {**GOOD, "profile": {"userDetails": {"tags": ["é" * 1_001]}}},
    ]
    reasons = list(normalize(records, account="a").rejects["reason"])
    assert reasons == [
        "not_an_object",
        "missing_id",
        "invalid_id",
        "unparseable_date",
        "future_date",
        "unparseable_date",
        "key_too_long",
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
    assert list(frames.contacts["status"]) == ["CLOSED"]
    assert frames.collapsed == 0
    assert len(frames.superseded) == 3
    frames = normalize(same, account="a")
    assert (len(frames.contacts), frames.collapsed, len(frames.superseded)) == (1, 2, 0)


def test_pii_mode_stores_keyed_hashes_and_scrubs_raw() -> None:
    contact = {
        "email": " Ana.Silva@Example.COM ",
        "phone": {"prefix": "+91", "number": "98765 43210"},
    }
    record = {**GOOD, "profile": {"userDetails": {"userProvidedName": "Ana", "contact": contact}}}
    # the record does carry an email and a phone, or there would be nothing to hide
    plain = normalize([record], account="a").contacts.iloc[0]
    assert (plain["email"], plain["phone_e164"]) == ("ana.silva@example.com", "+919876543210")
    assert "Ana.Silva@Example.COM" in plain["raw"]
    assert "98765 43210" in plain["raw"]
    keyed = normalize([record], account="a", pii_key=b"secret").contacts.iloc[0]
    for hashed, clear in (
        (keyed["email"], plain["email"]),
        (keyed["phone_e164"], plain["phone_e164"]),
    ):
        assert len(hashed) == 64
        assert set(hashed) <= set("0123456789abcdef")
        assert hashed != clear
    again = normalize([record], account="a", pii_key=b"secret").contacts.iloc[0]
    other = normalize([record], account="a", pii_key=b"other").contacts.iloc[0]
    assert again["email"] == keyed["email"], "one key, one hash: rows still join"
    assert other["email"] != keyed["email"], "the hash is keyed"
    assert keyed["email_domain"] == "example.com"
    assert keyed["name"] == "Ana"
    for clear in ("Ana.Silva", "ana.silva", "98765", "9876543210", '"email"', '"phone"'):
        assert clear not in keyed["raw"]


def test_content_hash_of_nul_and_pii_records_matches_normalize() -> None:
    record = {**GOOD, "name": "A\x00na"}
    for key in (None, b"secret"):
        stored = normalize([record], account="a", pii_key=key).contacts.iloc[0]["content_hash"]
        assert content_hash(record, key) == stored
    assert content_hash(record, None) != content_hash(record, b"secret")
    assert content_hash(["not", "a", "contact"]) is None
