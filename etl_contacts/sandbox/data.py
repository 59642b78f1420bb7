"""Deterministic contacts: compact arrays for what filters need, full records rendered on demand.

A million dicts would cost gigabytes; a million rows of small integers cost tens of megabytes.
Everything a record shows beyond the arrays comes from a random generator seeded by the seed and
the contact's index, so rendering the same contact twice gives the same record.
"""

from __future__ import annotations

import random
import uuid

import numpy as np

from etl_contacts.timestamps import format_ms

STATUSES = ("OPEN", "INPROGRESS", "REVIEW", "ONHOLD", "DEPENDANCY", "CLOSED")
CHANNELS = ("website", "whatsapp", "facebook", "telegram")
LAST_MESSAGE_BY = ("user", "bot", "agent")
TAGS = ("vip", "newsletter", "lead", "churn-risk", "beta", "wholesale", "support", "b2b")
ATTRIBUTE_KEYS = ("city", "score", "opt_in", "meta", "empty", "plan")
PREFIXES = ("91", "1", "44", "49", "55", "7", "86", "971", "+34", "81")
NAMES = (
    ("Ana", "Silva"),
    ("John", "O'Brien"),
    ("Zoë", "Müller"),
    ("Дмитрий", "Иванов"),
    ("प्रिया", "शर्मा"),
    ("محمد", "العلي"),
    ("王", "伟"),
    ("さくら", "田中"),
    ("Σοφία", "Παππά"),
    ("Chloé", "Dubois"),
    ("Oluwaseun", "Adeyemi"),
    ("Mai", "Nguyễn"),
    ("🙂 Sam", "Lee"),
)
MS_PER_DAY = 86_400_000
N_AGENTS = 12
N_BOTS = 3
N_SEGMENTS = 8


def object_id(seed: int, index: int) -> str:
    """24 hex characters whose order is the contact's index (so `_id` sorts like creation)."""
    return f"{seed % 0xFFFFFFFF:08x}{index:016x}"


def hex_id(kind: int, seed: int, number: int) -> str:
    return f"{kind:02x}{seed % 0xFFFFFF:06x}{number:016x}"


def generate_times(
    n: int, days: int, anchor_ms: int, seed: int, bulk_share: float
) -> tuple[np.ndarray, np.ndarray]:
    """createdAt and lastSeenAt (ms) for n contacts over `days` days before the anchor.

    A share of the contacts arrive in bulk imports: a few hundred with one createdAt to the ms.
    """
    rng = np.random.default_rng(seed)
    start = anchor_ms - days * MS_PER_DAY
    created = rng.integers(start, anchor_ms, size=n, dtype=np.int64)
    n_bulk = int(n * bulk_share)
    position = 0
    while position < n_bulk:
        size = int(rng.integers(100, 400))
        created[position : position + size] = rng.integers(start, anchor_ms)
        position += size
    created.sort()
    seen_offset = (rng.random(n) ** 3 * (anchor_ms - created)).astype(np.int64)
    last_seen = np.minimum(created + seen_offset, anchor_ms - 1)
    return created, last_seen


def render(
    seed: int,
    index: int,
    created_ms: int,
    last_seen_ms: int,
    updated_ms: int,
    status: int,
) -> dict[str, object]:
    """The full record of one contact, as the API shows it; optional fields missing or null."""
    rng = random.Random(seed * 1_000_003 + index)
    first, last = rng.choice(NAMES)
    channel = rng.randrange(len(CHANNELS))
    record: dict[str, object] = {
        "_id": object_id(seed, index),
        "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "profile": {"userDetails": _user_details(rng, index, first, last)},
        "channel": CHANNELS[channel],
        "_bot": hex_id(1, seed, channel * N_BOTS + rng.randrange(N_BOTS)),
        "status": STATUSES[status],
        "isOnline": rng.random() < 0.1,
        "_agentAssigned": hex_id(2, seed, rng.randrange(N_AGENTS)) if rng.random() < 0.7 else None,
        "segments": [hex_id(3, seed, s) for s in rng.sample(range(N_SEGMENTS), rng.randrange(3))],
        "userInteracted": rng.random() < 0.8,
        "isLiveChatActive": rng.random() < 0.05,
        "lastMessageBy": rng.choice(LAST_MESSAGE_BY),
        "lastMessage": {"text": "Hello!", "at": format_ms(last_seen_ms)},
        "websiteVisits": rng.randrange(0, 40),
        "createdAt": format_ms(created_ms),
        "updatedAt": format_ms(updated_ms),
        "lastSeenAt": format_ms(last_seen_ms),
    }
    ordered = rng.random() < 0.2
    record["hasOrdered"] = {
        "status": ordered,
        "lastAt": format_ms(rng.randint(created_ms, last_seen_ms)) if ordered else None,
    }
    for optional in ("uuid", "isOnline", "websiteVisits", "lastMessage", "segments"):
        roll = rng.random()
        if roll < 0.03:
            del record[optional]
        elif roll < 0.06:
            record[optional] = None
    return record


def _user_details(rng: random.Random, index: int, first: str, last: str) -> dict[str, object]:
    email: object = f" {first}.{last}{index}@Example.COM " if rng.random() < 0.5 else None
    if email is None and rng.random() < 0.7:
        email = f"user{index}@mail{rng.randrange(5)}.example.org"
    number = "".join(str(rng.randrange(10)) for _ in range(10))
    if rng.random() < 0.2:
        number = f"{number[:3]} {number[3:6]}-{number[6:]}"
    phone: object = {"number": number, "prefix": rng.choice(PREFIXES)}
    if rng.random() < 0.1:
        phone = None if rng.random() < 0.5 else {"number": "n/a", "prefix": ""}
    keys = rng.sample(ATTRIBUTE_KEYS, rng.randrange(len(ATTRIBUTE_KEYS)))
    attributes = [{"key": key, "value": _attribute_value(rng, key)} for key in keys]
    return {
        "userProvidedName": f"{first} {last}" if rng.random() < 0.95 else None,
        "contact": {"email": email, "phone": phone},
        "tags": rng.sample(TAGS, rng.randrange(4)),
        "attributes": attributes,
    }


def _attribute_value(rng: random.Random, key: str) -> object:
    values: dict[str, object] = {
        "city": rng.choice(("Pune", "São Paulo", "Köln", "東京")),
        "score": round(rng.random() * 10, 2),
        "opt_in": rng.random() < 0.5,
        "meta": {"source": rng.choice(("ad", "organic")), "depth": {"level": 2}},
        "empty": None,
        "plan": rng.randrange(1, 4),
    }
    return values[key]
