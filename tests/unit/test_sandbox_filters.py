"""Request bodies to queries, and each filter against a reference evaluated on the records."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import orjson
import pytest
from sandbox_json import as_array, as_object, as_text, contact, details

from etl_contacts.sandbox import SandboxConfig
from etl_contacts.sandbox.filters import UNBOUNDED, BadRequestError, Query, parse_body
from etl_contacts.sandbox.store import ContactStore

Record = dict[str, object]
NEUTRAL_BODY = {  # what public clients send when they filter on nothing
    "searchText": "",
    "tags": [],
    "status": [],
    "isOnline": False,
    "_botWebsite": [],
    "_botWhatsapp": [],
    "_botFacebook": [],
    "_botTelegram": [],
    "_agentAssigned": [],
    "segments": [],
    "applicableFilters": [],
    "lastSeenAt": {"startAt": "", "endsAt": ""},
    "createdAt": {"startAt": "", "endsAt": ""},
    "userInteracted": False,
    "lastMessageBy": [],
    "isLiveChatActive": False,
    "hasOrdered": {"status": False, "lastAt": ""},
    "tagsV2": [],
    "_botAutomation": [],
    "ctwaNewUsers": False,
    "isSubscriber": True,
    "isExport": "none",
}


def test_neutral_values_and_unknown_fields_mean_no_filter() -> None:
    assert parse_body(NEUTRAL_BODY) == (Query(), 1)
    assert parse_body({"page": 3, "tags": None, "createdAt": {}}) == (Query(), 3)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "the request body must be a JSON object"),
        ({"page": 0}, "page must be an integer from 1"),
        ({"page": "2"}, "page must be an integer from 1"),
        ({"page": True}, "page must be an integer from 1"),
        ({"tags": "vip"}, "tags must be an array of strings"),
        ({"tags": [1]}, "tags must be an array of strings"),
        ({"isOnline": "yes"}, "isOnline must be a boolean"),
        ({"searchText": 5}, "searchText must be a string"),
        ({"createdAt": "2024-05-01"}, "createdAt must be an object with startAt and endsAt"),
        ({"createdAt": {"startAt": "yesterday"}}, "createdAt bound 'yesterday' is not an ISO 8601"),
        (
            {"lastSeenAt": {"endsAt": "2024-05-01T00:00:00"}},
            "lastSeenAt bound '2024-05-01T00:00:00' has no time zone; add Z",
        ),
        ({"createdAt": {"startAt": 1.5}}, "createdAt bounds must be ISO 8601 strings"),
    ],
)
def test_bodies_that_cannot_be_understood_are_refused(body: object, message: str) -> None:
    with pytest.raises(BadRequestError, match=re.escape(message)):
        parse_body(body)


def test_date_bounds_in_every_accepted_form() -> None:
    expected = int(datetime(2024, 5, 1, tzinfo=UTC).timestamp() * 1000)
    for bound in ("2024-05-01T00:00:00.000Z", "2024-05-01T05:30:00+05:30", "2024-05-01", expected):
        query, _ = parse_body({"createdAt": {"startAt": bound, "endsAt": ""}})
        assert query.created == (expected, None)
    query, _ = parse_body({"lastSeenAt": {"startAt": "", "endsAt": "2024-05-01T00:00:00.001Z"}})
    assert (query.created, query.last_seen) == (UNBOUNDED, (None, expected + 1))


def test_equal_filters_make_equal_queries() -> None:
    one, _ = parse_body({"tags": ["a", "b"], "searchText": " Ana ", "page": 1})
    two, _ = parse_body({"tags": ["b", "a"], "searchText": "ana", "page": 9})
    assert one == two
    assert hash(one) == hash(two)


@pytest.fixture(scope="module")
def store() -> Iterator[ContactStore]:
    store = ContactStore(SandboxConfig(contacts=2000, days=20, seed=6, page_size=50))
    yield store
    store.close()


@pytest.fixture(scope="module")
def records(store: ContactStore) -> list[Record]:
    return [orjson.loads(blob) for blob in store.snapshot().contacts]


def matching(store: ContactStore, body: dict[str, object]) -> list[str]:
    query, _ = parse_body(body)
    ids, page = [], 1
    while blobs := store.page(query, page).records:
        ids += [orjson.loads(b)["_id"] for b in blobs]
        page += 1
    return ids


def _text(r: Record) -> str:
    """An independent statement of what searchText looks through."""
    reachable = contact(r)
    phone = as_object(reachable.get("phone") or {})
    number, prefix = phone.get("number"), phone.get("prefix")
    parts = [details(r).get("userProvidedName"), reachable.get("email"), number]
    parts.append(f"{prefix or ''}{number or ''}")
    return "\n".join(p for p in parts if isinstance(p, str)).casefold()


def _ordered(value: object) -> bool:
    return isinstance(value, dict) and value.get("status") is True


def _any_of(values: object, wanted: set[str]) -> bool:
    return bool(set(values if isinstance(values, list) else [values]) & wanted)


REFERENCE: dict[str, tuple[object, Callable[[Record], bool]]] = {
    "searchText": ("ANA", lambda r: "ana" in _text(r)),
    "tags": (["vip", "клиент"], lambda r: _any_of(details(r).get("tags"), {"vip", "клиент"})),
    "status": (["OPEN", "CLOSED"], lambda r: r["status"] in ("OPEN", "CLOSED")),
    "isOnline": (True, lambda r: r.get("isOnline") is True),
    "userInteracted": (True, lambda r: r.get("userInteracted") is True),
    "isLiveChatActive": (True, lambda r: r.get("isLiveChatActive") is True),
    "hasOrdered": ({"status": True, "lastAt": ""}, lambda r: _ordered(r.get("hasOrdered"))),
    "lastMessageBy": (["bot", "agent"], lambda r: r.get("lastMessageBy") in ("bot", "agent")),
}


@pytest.mark.parametrize("name", list(REFERENCE))
def test_each_filter_selects_exactly_the_contacts_whose_records_pass_it(
    store: ContactStore, records: list[Record], name: str
) -> None:
    value, passes = REFERENCE[name]
    expected = {r["_id"] for r in records if passes(r)}
    got = matching(store, {name: value})
    assert 0 < len(expected) < len(records), "the filter must select some, not all"
    assert set(got) == expected
    assert len(got) == len(expected), "each once"


def test_search_reaches_emails_and_phone_numbers(
    store: ContactStore, records: list[Record]
) -> None:
    for text in ("example.org", "пример.рф", "-", "+"):
        expected = {r["_id"] for r in records if text.casefold() in _text(r)}
        assert expected, f"some record holds {text!r}"
        assert set(matching(store, {"searchText": text})) == expected


def test_id_filters_match_agents_segments_and_bots_per_channel(
    store: ContactStore, records: list[Record]
) -> None:
    agents = sorted({as_text(r["_agentAssigned"]) for r in records if r.get("_agentAssigned")})[:2]
    segment = next(s for r in records for s in as_array(r.get("segments")))
    whatsapp = next(r["_bot"] for r in records if r.get("channel") == "whatsapp" and r.get("_bot"))
    website = next(r["_bot"] for r in records if r.get("channel") == "website" and r.get("_bot"))
    on_whatsapp = (whatsapp, "whatsapp")
    cases = {
        "_agentAssigned": (agents, lambda r: r.get("_agentAssigned") in agents),
        "segments": ([segment], lambda r: segment in as_array(r.get("segments"))),
        "_botWhatsapp": ([whatsapp], lambda r: (r.get("_bot"), r.get("channel")) == on_whatsapp),
    }
    for name, (value, passes) in cases.items():
        expected = {r["_id"] for r in records if passes(r)}
        assert expected, name
        assert set(matching(store, {name: value})) == expected, name
    assert matching(store, {"_botWebsite": [whatsapp]}) == [], "a bot matches on its channel only"
    both = set(matching(store, {"_botWhatsapp": [whatsapp], "_botWebsite": [website]}))
    assert both == {
        r["_id"]
        for r in records
        if r.get("_bot") in (whatsapp, website) and r.get("channel") in ("whatsapp", "website")
    }
    assert matching(store, {"_agentAssigned": ["ffffffffffffffffffffffff"]}) == []


def test_filters_combine_as_and(store: ContactStore, records: list[Record]) -> None:
    start = sorted(as_text(r["createdAt"]) for r in records)[500]
    body: dict[str, object] = {
        "tags": ["newsletter"],
        "status": ["OPEN"],
        "createdAt": {"startAt": start},
    }
    expected = {
        r["_id"]
        for r in records
        if "newsletter" in as_array(details(r).get("tags"))
        and r["status"] == "OPEN"
        and as_text(r["createdAt"]) >= start
    }
    assert expected
    assert set(matching(store, body)) == expected
