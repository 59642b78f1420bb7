"""Deterministic contacts as compact columns: a million of them in tens of megabytes.

Everything a filter looks at is a small integer per contact; the rest of a record (render.py)
is drawn when the record is encoded.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields

import numpy as np

from etl_contacts.sandbox.draws import TRAITS, Draws, salt
from etl_contacts.sandbox.vocabulary import (
    ATTRIBUTE_VARIANTS,
    CHANNEL_WEIGHTS,
    LAST_MESSAGE_BY,
    LAST_MESSAGE_BY_WEIGHTS,
    N_AGENTS,
    N_BOTS,
    N_SEGMENTS,
    SCRIPT_WEIGHTS,
    SCRIPTS,
    SEGMENT_CHANCE,
    TAG_CHANCES,
)

MAX_CONTACTS = 1 << 24  # the counter part of an _id has 6 hex digits

# Optional fields: each is present, null or missing; two bits each in Traits.absent.
OPTIONAL = (
    "uuid",
    "channel",
    "_bot",
    "isOnline",
    "_agentAssigned",
    "segments",
    "userInteracted",
    "isLiveChatActive",
    "lastMessageBy",
    "lastMessage",
    "websiteVisits",
    "hasOrdered",
    "tags",
    "attributes",
)
PRESENT, NULL, MISSING = 0, 1, 2
ONLINE, INTERACTED, LIVE_CHAT, ORDERED = 1, 2, 4, 8
FLAG_CHANCES = {ONLINE: 0.10, INTERACTED: 0.80, LIVE_CHAT: 0.05, ORDERED: 0.20}
FLAG_FIELDS = {
    ONLINE: "isOnline",
    INTERACTED: "userInteracted",
    LIVE_CHAT: "isLiveChatActive",
    ORDERED: "hasOrdered",
}
NAME_FORMS = (0.88, 0.04, 0.03, 0.03, 0.02)  # plain, padded, upper case, null, missing
EMAIL_FORMS = (0.45, 0.20, 0.10, 0.10, 0.05, 0.05, 0.05)  # see render.email
PHONE_FORMS = (0.40, 0.10, 0.10, 0.10, 0.08, 0.05, 0.06, 0.05, 0.03, 0.03)  # see render.phone


def object_id(seed: int, index: int, created_ms: int) -> str:
    """A MongoDB-like ObjectId: creation second, a per-seed salt, then the index as counter.

    Contacts are numbered in creation order, so `_id` order is index order, and ties of a sort
    can be broken by index.
    """
    return f"{(created_ms // 1000) & 0xFFFFFFFF:08x}{salt(seed):010x}{index:06x}"


def hex_id(kind: int, seed: int, number: int) -> str:
    return f"{kind:02x}{salt(seed):010x}{number:012x}"


@dataclass(frozen=True)
class Ids:
    """The account's bots (channel-major), agents and segments."""

    bots: tuple[str, ...]
    agents: tuple[str, ...]
    segments: tuple[str, ...]

    @classmethod
    def for_seed(cls, seed: int) -> Ids:
        n_bots = N_BOTS * len(CHANNEL_WEIGHTS)
        return cls(
            bots=tuple(hex_id(1, seed, number) for number in range(n_bots)),
            agents=tuple(hex_id(2, seed, number) for number in range(N_AGENTS)),
            segments=tuple(hex_id(3, seed, number) for number in range(N_SEGMENTS)),
        )


@dataclass(frozen=True)
class Traits:
    """What filters and records need of each contact besides its times and status.

    Filter columns hold what the record shows: a flag is set only when its field is present and
    true, `agent`/`last_by` are -1 when the record has no such value. `bot` is the bot's number
    (channel-major); whether the record shows it and its channel is in `absent`.
    `attribute_shift` is added to the attribute list a record draws (render.py): 0 until an
    agent edits the contact's attributes, so generated records are as they always were.
    """

    script: np.ndarray
    first: np.ndarray
    last: np.ndarray
    name_form: np.ndarray
    email_form: np.ndarray
    phone_form: np.ndarray
    channel: np.ndarray
    bot: np.ndarray
    agent: np.ndarray
    segments: np.ndarray
    tags: np.ndarray
    flags: np.ndarray
    last_by: np.ndarray
    absent: np.ndarray
    attribute_shift: np.ndarray

    @classmethod
    def generate(cls, seed: int, start: int, stop: int) -> Traits:
        draw = Draws(seed, TRAITS, np.arange(start, stop))
        n = stop - start
        absent = np.zeros(n, dtype=np.uint32)
        for position in range(len(OPTIONAL)):
            state = draw.pick((0.98, 0.013, 0.007)).astype(np.uint32)
            absent |= state << np.uint32(2 * position)
        present = {name: shown(absent, name) for name in OPTIONAL}
        script = draw.pick(SCRIPT_WEIGHTS)
        channel = draw.pick(CHANNEL_WEIGHTS)
        bot = channel * N_BOTS + draw.below(N_BOTS)
        assigned = draw.chance(0.7) & present["_agentAssigned"]
        flags = np.zeros(n, dtype=np.uint8)
        for flag, chance in FLAG_CHANCES.items():
            flags |= np.where(draw.chance(chance) & present[FLAG_FIELDS[flag]], flag, 0).astype(
                np.uint8
            )
        return cls(
            script=script.astype(np.int8),
            first=draw.below(np.array([len(s[0]) for s in SCRIPTS])[script]).astype(np.int8),
            last=draw.below(np.array([len(s[1]) for s in SCRIPTS])[script]).astype(np.int8),
            name_form=draw.pick(NAME_FORMS).astype(np.int8),
            email_form=draw.pick(EMAIL_FORMS).astype(np.int8),
            phone_form=draw.pick(PHONE_FORMS).astype(np.int8),
            channel=channel.astype(np.int8),
            bot=bot.astype(np.int8),
            agent=np.where(assigned, draw.below(N_AGENTS), -1).astype(np.int8),
            segments=_bitmask(draw, (SEGMENT_CHANCE,) * N_SEGMENTS, present["segments"]),
            tags=_bitmask(draw, TAG_CHANCES, present["tags"]),
            flags=flags,
            last_by=np.where(
                present["lastMessageBy"], draw.pick(LAST_MESSAGE_BY_WEIGHTS), -1
            ).astype(np.int8),
            absent=absent,
            attribute_shift=np.zeros(n, dtype=np.uint16),
        )

    def edit(self, index: int, rng: random.Random) -> None:
        """What an agent does to contact `index` besides its status, each half the time.

        Reassigned to another agent, a tag added or removed, another attribute list, a reply
        (lastMessageBy "agent"). A field an agent sets is shown from then on, even where it was
        null or missing, so the filter columns still say what the record shows.
        """
        if rng.random() < 0.5:
            current = int(self.agent[index])
            other = rng.randrange(N_AGENTS - (current >= 0))
            self.agent[index] = other + (0 <= current <= other)
            self._show(index, "_agentAssigned")
        if rng.random() < 0.5:
            self.tags[index] ^= np.uint8(1 << rng.randrange(len(TAG_CHANCES)))
            self._show(index, "tags")
        if rng.random() < 0.5:
            shift = int(self.attribute_shift[index]) + rng.randrange(1, ATTRIBUTE_VARIANTS)
            self.attribute_shift[index] = shift % ATTRIBUTE_VARIANTS
            self._show(index, "attributes")
        if rng.random() < 0.5:
            self.last_by[index] = LAST_MESSAGE_BY.index("agent")
            self._show(index, "lastMessageBy")

    def _show(self, index: int, name: str) -> None:
        self.absent[index] &= ~np.uint32(3 << (2 * OPTIONAL.index(name)))

    def __len__(self) -> int:
        return len(self.script)

    def take(self, positions: np.ndarray) -> Traits:
        return Traits(**{f.name: getattr(self, f.name)[positions] for f in fields(self)})

    def extend(self, other: Traits) -> Traits:
        return Traits(
            **{
                f.name: np.concatenate((getattr(self, f.name), getattr(other, f.name)))
                for f in fields(self)
            }
        )


def shown(absent: np.ndarray, name: str) -> np.ndarray:
    """Whether records show optional field `name` (neither null nor missing)."""
    return _state(absent, name) == PRESENT


def _state(absent: np.ndarray, name: str) -> np.ndarray:
    return (absent >> np.uint32(2 * OPTIONAL.index(name))) & np.uint32(3)


def _bitmask(draw: Draws, chances: tuple[float, ...], visible: np.ndarray) -> np.ndarray:
    mask = np.zeros(len(visible), dtype=np.uint8)
    for bit, chance in enumerate(chances):
        mask |= np.where(draw.chance(chance), 1 << bit, 0).astype(np.uint8)
    return np.where(visible, mask, 0).astype(np.uint8)
