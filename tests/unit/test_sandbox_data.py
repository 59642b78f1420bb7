"""Generated contacts: deterministic, realistic, and the same computed alone or in bulk."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest
from sandbox_json import JsonObject, as_array, as_object, as_text, contact, details

from etl_contacts.sandbox.data import generate_times, render
from etl_contacts.sandbox.draws import Draws
from etl_contacts.sandbox.render import renderer
from etl_contacts.sandbox.traits import OPTIONAL, Traits
from etl_contacts.timestamps import format_ms, to_ms

ANCHOR_MS = to_ms(datetime(2024, 6, 1, tzinfo=UTC))
DAY_MS = 86_400_000
N = 3000
SEED = 3
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


Generated = tuple[list[JsonObject], np.ndarray, np.ndarray]  # records, createdAt, lastSeenAt


def _records(seed: int, n: int) -> Generated:
    created, seen = generate_times(n, 30, ANCHOR_MS, seed, 0.2)
    status = np.zeros(n, dtype=np.int8)
    rows = Traits.generate(seed, 0, n)
    return renderer(seed).records(rows, np.arange(n), created, seen, seen, status), created, seen


@pytest.fixture(scope="module")
def generated() -> Generated:
    return _records(SEED, N)


def test_times_are_deterministic_and_within_the_days_before_the_anchor() -> None:
    created, seen = generate_times(N, 30, ANCHOR_MS, SEED, 0.2)
    again = generate_times(N, 30, ANCHOR_MS, SEED, 0.2)
    other = generate_times(N, 30, ANCHOR_MS, SEED + 1, 0.2)
    assert np.array_equal(created, again[0]) and np.array_equal(seen, again[1])
    assert not np.array_equal(created, other[0])
    assert created.min() >= ANCHOR_MS - 30 * DAY_MS and seen.max() < ANCHOR_MS
    assert np.all(np.diff(created) >= 0) and np.all(seen >= created)
    assert 0.1 < np.mean(seen == created) < 0.5, "some contacts are never seen after creation"


def test_bulk_imports_share_one_createdat_to_the_millisecond() -> None:
    created, _ = generate_times(N, 30, ANCHOR_MS, SEED, 0.2)
    assert max(Counter(created.tolist()).values()) >= 100


def test_a_contact_computed_alone_agrees_with_the_bulk(generated: Generated) -> None:
    records, created, seen = generated
    bulk, alone = Draws(SEED, 1, np.arange(N)), Draws(SEED, 1, np.array([1234]))
    assert bulk.bits(64)[1234] == alone.bits(64)[0]
    assert (
        render(SEED, 1234, int(created[1234]), int(seen[1234]), int(seen[1234]), 0)
        == (records[1234])
    )


def test_records_are_the_same_bytes_every_time(generated: Generated) -> None:
    _, created, seen = generated
    rows, indexes = Traits.generate(SEED, 0, 200), np.arange(200)
    status = np.zeros(200, dtype=np.int8)
    args = (rows, indexes, created[:200], seen[:200], seen[:200], status)
    assert renderer(SEED).encode(*args) == renderer(SEED).encode(*args)
    assert renderer(SEED + 1).encode(*args) != renderer(SEED).encode(*args)


def test_ids_timestamps_and_uuids_look_like_the_api(generated: Generated) -> None:
    records, created, seen = generated
    ids = [as_text(r["_id"]) for r in records]
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == N, "ids are unique and sort like creation"
    for record, made, last in zip(records, created.tolist(), seen.tolist(), strict=True):
        assert (record["createdAt"], record["lastSeenAt"]) == (format_ms(made), format_ms(last))
        assert TIMESTAMP.match(as_text(record["updatedAt"]))
        if isinstance(shown := record.get("uuid"), str):
            assert uuid.UUID(shown).version == 4


def _scripts(texts: list[str]) -> set[str]:
    names = {unicodedata.name(ch, "?").split()[0] for text in texts for ch in text}
    return {"EMOJI" if ord(ch) > 0x1F000 else "" for text in texts for ch in text} | names


def test_names_and_emails_come_in_many_scripts(generated: Generated) -> None:
    records, _, _ = generated
    names = [n for r in records if isinstance(n := details(r).get("userProvidedName"), str)]
    emails = [e for r in records if isinstance(e := contact(r).get("email"), str)]
    wanted = {"LATIN", "CYRILLIC", "DEVANAGARI", "ARABIC", "CJK", "HIRAGANA", "HANGUL", "EMOJI"}
    assert wanted <= _scripts(names)
    assert {"CYRILLIC", "DEVANAGARI", "ARABIC", "CJK"} <= _scripts(emails)
    assert any(e != e.strip() for e in emails) and any(e.endswith("@") for e in emails)
    assert any(n != n.strip() for n in names)


def test_phones_have_prefixes_numbers_and_junk(generated: Generated) -> None:
    records, _, _ = generated
    contacts = [contact(r) for r in records]
    phones = [p for c in contacts if isinstance(p := c.get("phone"), dict)]
    numbers = [p["number"] for p in phones]
    assert any(" " in n for n in numbers) and any("-" in n for n in numbers)
    assert any(n.startswith("+") for n in numbers) and any(n.isdigit() for n in numbers)
    assert any(not any(ch.isdigit() for ch in n) for n in numbers), "junk with no digits"
    assert any(str(p["prefix"]).startswith("+") for p in phones)
    assert any(p["prefix"] is None for p in phones)
    assert any(c.get("phone", 0) is None for c in contacts) and any(
        "phone" not in c for c in contacts
    )


def test_attribute_values_take_every_json_type(generated: Generated) -> None:
    records, _, _ = generated
    values = [
        a["value"]
        for r in records
        for a in map(as_object, as_array(details(r).get("attributes")))
        if "value" in a
    ]
    assert {type(v) for v in values} == {str, int, float, bool, type(None), dict}


def test_optional_fields_are_sometimes_missing_and_sometimes_null(generated: Generated) -> None:
    records, _, _ = generated
    for field in OPTIONAL:
        holders = [details(r) if field in ("tags", "attributes") else r for r in records]
        assert any(field not in h for h in holders), f"{field} is never missing"
        assert any(field in h and h[field] is None for h in holders), f"{field} is never null"
        assert sum(h.get(field) is not None for h in holders) > 0.6 * N  # unassigned: null


def test_channels_bots_agents_and_segments_vary(generated: Generated) -> None:
    records, _, _ = generated
    assert {r.get("channel") for r in records} >= {"website", "whatsapp", "facebook", "telegram"}
    assert len({r.get("_bot") for r in records}) > 8
    assert len({r.get("_agentAssigned") for r in records}) > 8
    assert any(len(as_array(r.get("segments"))) > 1 for r in records)
    assert any(len(as_array(details(r).get("tags"))) > 1 for r in records)
