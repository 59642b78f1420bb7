"""Contact records as the API shows them, encoded straight to JSON from the columns of traits.py.

Encoding is the sandbox's hot path (a million records at startup), so values are drawn and
timestamps formatted for a whole block at once, JSON fragments of pooled values are prepared
once, and each record is one string template. Records with null or missing fields (about a
third) take a slower path through a dict, which keeps the template free of special cases.
A contact never active (lastSeenAt NEVER) shows `"lastSeenAt":null` or, half of them, no key.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import orjson

from etl_contacts.sandbox.details import (
    EMAIL_MISSING,
    NAME_MISSING,
    NAMES_JSON,
    PHONE_MISSING,
    PREFIXES_JSON,
    attribute_variants,
    email,
    phone,
    phone_draws,
    to_json,
)
from etl_contacts.sandbox.draws import LOOKS, Draws
from etl_contacts.sandbox.index import NEVER
from etl_contacts.sandbox.traits import MISSING, NULL, OPTIONAL, PRESENT, Ids, Traits, object_id
from etl_contacts.sandbox.vocabulary import (
    ATTRIBUTE_VARIANTS,
    CHANNELS,
    LAST_MESSAGE_BY,
    MESSAGES,
    PHONE_JUNK,
    PHONE_PREFIXES,
    STATUSES,
    TAGS,
)


def _subsets(items: tuple[str, ...]) -> list[str]:
    """JSON arrays of the items each 8-bit mask selects."""
    return [to_json([x for bit, x in enumerate(items) if mask >> bit & 1]) for mask in range(256)]


# JSON of pooled values; a trailing "null" makes index -1 (no value) render as null.
TAGS_JSON = _subsets(TAGS)
CHANNELS_JSON = [to_json(c) for c in CHANNELS]
STATUSES_JSON = [to_json(s) for s in STATUSES]
LAST_BY_JSON = [*(to_json(x) for x in LAST_MESSAGE_BY), "null"]
MESSAGES_JSON = [to_json(m) for m in MESSAGES]
BOOLEAN = ("false", "true")
NOT_ORDERED = '{"status":false,"lastAt":null}'


class Renderer:
    """Records of one seed's contacts; the same inputs always give the same bytes."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        ids = Ids.for_seed(seed)
        self._bots = [to_json(b) for b in ids.bots]
        self._agents = [*(to_json(a) for a in ids.agents), "null"]
        self._segments = _subsets(ids.segments)
        self._attributes = attribute_variants(seed)

    def encode(
        self,
        rows: Traits,
        indexes: np.ndarray,
        created: np.ndarray,
        last_seen: np.ndarray,
        updated: np.ndarray,
        status: np.ndarray,
        id_created: np.ndarray | None = None,
    ) -> list[bytes]:
        """The JSON of contacts `indexes`; `rows` and the arrays hold their values, in order.
        `id_created`: the creation times their `_id`s were made from, when a data fix has moved
        createdAt since (an `_id` never changes)."""
        looks = _Looks(self.seed, indexes, created, last_seen, updated, rows.attribute_shift)
        columns = zip(
            indexes.tolist(),
            (created if id_created is None else id_created).tolist(),
            status.tolist(),
            rows.script.tolist(),
            rows.first.tolist(),
            rows.last.tolist(),
            rows.name_form.tolist(),
            rows.email_form.tolist(),
            rows.phone_form.tolist(),
            rows.channel.tolist(),
            rows.bot.tolist(),
            rows.agent.tolist(),
            rows.segments.tolist(),
            rows.tags.tolist(),
            rows.flags.tolist(),
            rows.last_by.tolist(),
            rows.absent.tolist(),
            *looks.columns(),
            strict=True,
        )
        return [self._encode(*values) for values in columns]

    def _encode(
        self,
        index: int,
        created: int,
        status: int,
        script: int,
        first: int,
        last: int,
        name_form: int,
        email_form: int,
        phone_form: int,
        channel: int,
        bot: int,
        agent: int,
        segments: int,
        tags: int,
        flags: int,
        last_by: int,
        absent: int,
        uuid: str,
        digits: int,
        prefix: int,
        junk: int,
        visits: int,
        message: int,
        variant: int,
        created_at: str,
        seen_at: str,
        updated_at: str,
        ordered_at: str,
        seen_form: int,
    ) -> bytes:
        ordered = f'{{"status":true,"lastAt":"{ordered_at}Z"}}' if flags & 8 else NOT_ORDERED
        phone_json = (
            f'{{"number":"{digits:010d}","prefix":{PREFIXES_JSON[prefix]}}}'
            if phone_form == 0
            else to_json(phone(phone_form, digits, PHONE_PREFIXES[prefix], PHONE_JUNK[junk]))
        )
        text = (
            f'{{"_id":"{object_id(self.seed, index, created)}","uuid":"{uuid}",'
            f'"profile":{{"userDetails":{{'
            f'"userProvidedName":{NAMES_JSON[script][first][last][name_form]},"contact":{{'
            f'"email":{to_json(email(script, first, last, email_form, index))},'
            f'"phone":{phone_json}}},'
            f'"tags":{TAGS_JSON[tags]},"attributes":{self._attributes[variant]}}}}},'
            f'"channel":{CHANNELS_JSON[channel]},"_bot":{self._bots[bot]},'
            f'"status":{STATUSES_JSON[status]},"isOnline":{BOOLEAN[flags & 1]},'
            f'"_agentAssigned":{self._agents[agent]},"segments":{self._segments[segments]},'
            f'"userInteracted":{BOOLEAN[flags >> 1 & 1]},'
            f'"isLiveChatActive":{BOOLEAN[flags >> 2 & 1]},"lastMessageBy":{LAST_BY_JSON[last_by]},'
            f'"lastMessage":{{"text":{MESSAGES_JSON[message]},"at":"{seen_at}Z"}},'
            f'"websiteVisits":{visits if channel == 0 else 0},'
            f'"hasOrdered":{ordered},'
            f'"createdAt":"{created_at}Z","updatedAt":"{updated_at}Z","lastSeenAt":"{seen_at}Z"}}'
        )
        lacks_a_key = (
            name_form == NAME_MISSING or email_form == EMAIL_MISSING or phone_form == PHONE_MISSING
        )
        if absent or lacks_a_key or seen_form != PRESENT:
            record = _drop(orjson.loads(text), absent, name_form, email_form, phone_form, seen_form)
            # orjson's buffer is allocated for kilobytes; a copy keeps only the record's bytes
            return bytes(memoryview(orjson.dumps(record)))
        return text.encode()

    def records(
        self,
        rows: Traits,
        indexes: np.ndarray,
        created: np.ndarray,
        last_seen: np.ndarray,
        updated: np.ndarray,
        status: np.ndarray,
    ) -> list[dict[str, object]]:
        """Records as dicts (for the truth and for tests); same arguments as `encode`."""
        encoded = self.encode(rows, indexes, created, last_seen, updated, status)
        return [orjson.loads(b) for b in encoded]


def _drop(
    record: dict, absent: int, name_form: int, email_form: int, phone_form: int, seen_form: int
) -> dict[str, object]:
    """Make fields null or missing as the contact's absent bits and forms say."""
    details = record["profile"]["userDetails"]
    _drop_field(record, "lastSeenAt", seen_form)
    for position, field in enumerate(OPTIONAL):
        target = details if field in ("tags", "attributes") else record
        _drop_field(target, field, absent >> (2 * position) & 3)
    if name_form == NAME_MISSING:
        del details["userProvidedName"]
    if email_form == EMAIL_MISSING:
        del details["contact"]["email"]
    if phone_form == PHONE_MISSING:
        del details["contact"]["phone"]
    return record


def _drop_field(target: dict, field: str, state: int) -> None:
    if state == NULL:
        target[field] = None
    elif state == MISSING:
        del target[field]


class _Looks:
    """Cosmetic values of a block of contacts (nothing a filter looks at), drawn vectorized."""

    def __init__(
        self,
        seed: int,
        indexes: np.ndarray,
        created: np.ndarray,
        last_seen: np.ndarray,
        updated: np.ndarray,
        attribute_shift: np.ndarray,
    ) -> None:
        draw = Draws(seed, LOOKS, indexes)
        self.digits, self.prefix, self.junk = phone_draws(draw)
        self.uuids = _uuids(draw.bits(64), draw.bits(64))
        self.visits = draw.below(40)
        self.message = draw.below(len(MESSAGES))
        self.variant = (draw.below(ATTRIBUTE_VARIANTS) + attribute_shift) % ATTRIBUTE_VARIANTS
        never = last_seen == NEVER
        last_seen = np.where(never, created, last_seen)  # for the times shown beside it
        ordered = created + (draw.uniform() * (last_seen - created)).astype(np.int64)
        self.times = [_iso_block(t) for t in (created, last_seen, updated, ordered)]
        # drawn last, so that every draw above keeps its value: records stay as they were
        self.seen_form = np.where(never, np.where(draw.chance(0.5), MISSING, NULL), PRESENT)

    def columns(self) -> list[list]:
        return [
            self.uuids,
            self.digits.tolist(),
            self.prefix.tolist(),
            self.junk.tolist(),
            self.visits.tolist(),
            self.message.tolist(),
            self.variant.tolist(),
            *self.times,
            self.seen_form.tolist(),
        ]


def _iso_block(millis: np.ndarray) -> list[str]:
    """`2024-04-26T17:10:22.134` (the template adds the Z) for a block of timestamps."""
    return np.datetime_as_string(millis.astype("datetime64[ms]"), unit="ms").tolist()


def _uuids(high: np.ndarray, low: np.ndarray) -> list[str]:
    """Version-4 UUID strings from 128 random bits each, formatted in one pass."""
    high = (high & np.uint64(~(0xF << 12) & 0xFFFFFFFFFFFFFFFF)) | np.uint64(4 << 12)
    low = (low >> np.uint64(2)) | np.uint64(0x8000000000000000)
    packed = np.stack((high, low), axis=1).astype(">u8").tobytes().hex()
    return [
        f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        for h in (packed[i : i + 32] for i in range(0, len(packed), 32))
    ]


@lru_cache(maxsize=8)
def renderer(seed: int) -> Renderer:
    return Renderer(seed)
