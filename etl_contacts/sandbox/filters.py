"""The request body's filters, with plausible semantics for what the docs leave open.

Lists match any-of; booleans filter only when true; neutral values ("", [], false, null, {}:
anything falsy) mean no filter; unknown fields are ignored. Date bounds: startAt inclusive,
endsAt as configured, either one empty meaning unbounded. Filters run on the columns of
traits.py, never on records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import numpy as np

from etl_contacts.sandbox.details import haystacks
from etl_contacts.sandbox.index import UNBOUNDED, Bounds
from etl_contacts.sandbox.traits import FLAG_FIELDS, ORDERED, Ids, Traits, shown
from etl_contacts.sandbox.vocabulary import LAST_MESSAGE_BY, N_BOTS, STATUSES, TAGS

BOT_FIELDS = {"_botWebsite": 0, "_botWhatsapp": 1, "_botFacebook": 2, "_botTelegram": 3}
LIST_FIELDS = ("tags", "status", "_agentAssigned", "segments", "lastMessageBy", *BOT_FIELDS)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BadRequestError(ValueError):
    """The body cannot be understood; answered with 422 and this message."""


@dataclass(frozen=True)
class Query:
    """One request's filters, normalized: equal filters give equal (hashable) queries."""

    created: Bounds = UNBOUNDED
    last_seen: Bounds = UNBOUNDED
    search: str = ""
    lists: tuple[tuple[str, frozenset[str]], ...] = ()
    flags: int = 0


def parse_body(body: object) -> tuple[Query, int]:
    """The query and the page number (from 1) of a request body."""
    if not isinstance(body, dict):
        raise BadRequestError("the request body must be a JSON object")
    page = body.get("page", 1)
    if not isinstance(page, int) or isinstance(page, bool) or page < 1:
        raise BadRequestError("page must be an integer from 1")
    search = body.get("searchText") or ""
    if not isinstance(search, str):
        raise BadRequestError("searchText must be a string")
    flags = 0
    for flag, name in FLAG_FIELDS.items():
        value = body.get(name)
        if flag == ORDERED and isinstance(value, dict):
            value = value.get("status")
        if value is True:
            flags |= flag
        elif value:
            raise BadRequestError(f"{name} must be a boolean")
    query = Query(
        created=_range(body.get("createdAt"), "createdAt"),
        last_seen=_range(body.get("lastSeenAt"), "lastSeenAt"),
        search=search.strip().casefold(),
        lists=tuple((name, ids) for name in LIST_FIELDS if (ids := _strings(body.get(name), name))),
        flags=flags,
    )
    return query, page


def _strings(value: object, name: str) -> frozenset[str]:
    if not value:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadRequestError(f"{name} must be an array of strings")
    return frozenset(value)


def _range(value: object, name: str) -> Bounds:
    if not value:
        return UNBOUNDED
    if not isinstance(value, dict):
        raise BadRequestError(f"{name} must be an object with startAt and endsAt")
    return (_millis(value.get("startAt"), name), _millis(value.get("endsAt"), name))


def _millis(value: object, name: str) -> int | None:
    """A bound in ms: ISO 8601 with a zone, a date alone (UTC midnight), or epoch ms."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise BadRequestError(f"{name} bounds must be ISO 8601 strings")
    return _iso_millis(value, name)


@lru_cache(maxsize=4096)  # the bounds of a window repeat on every page of it
def _iso_millis(value: str, name: str) -> int:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadRequestError(f"{name} bound {value!r} is not an ISO 8601 date") from exc
    if moment.tzinfo is None:
        if len(value) != len("2024-05-01"):
            raise BadRequestError(f"{name} bound {value!r} has no time zone; add Z")
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(milliseconds=1)


class Matcher:
    """Applies a query's non-date filters to candidate contacts, column by column."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._texts: list[str | None] = []
        ids = Ids.for_seed(seed)
        self._codes: dict[str, dict[str, int]] = {
            "tags": {tag: 1 << bit for bit, tag in enumerate(TAGS)},
            "status": {status: code for code, status in enumerate(STATUSES)},
            "_agentAssigned": {agent: code for code, agent in enumerate(ids.agents)},
            "segments": {segment: 1 << bit for bit, segment in enumerate(ids.segments)},
            "lastMessageBy": {who: code for code, who in enumerate(LAST_MESSAGE_BY)},
        }
        for name, channel in BOT_FIELDS.items():
            on_channel = ids.bots[channel * N_BOTS : (channel + 1) * N_BOTS]
            self._codes[name] = {bot: channel * N_BOTS + k for k, bot in enumerate(on_channel)}

    def keep(
        self, query: Query, traits: Traits, status: np.ndarray, candidates: np.ndarray
    ) -> np.ndarray:
        """The candidates (in their order) that pass every non-date filter of the query."""
        mask = np.ones(len(candidates), dtype=bool)
        bots = np.zeros(len(candidates), dtype=bool)
        any_bots = False
        for name, wanted in query.lists:
            codes = [self._codes[name][value] for value in wanted if value in self._codes[name]]
            if name in BOT_FIELDS:
                any_bots = True
                bots |= np.isin(traits.bot[candidates], codes)
            elif name in ("tags", "segments"):
                bits = getattr(traits, name)[candidates]
                mask &= (bits & np.uint8(sum(codes))) != 0
            else:
                column = {"status": status, "_agentAssigned": traits.agent}.get(
                    name, traits.last_by
                )
                mask &= np.isin(column[candidates], codes)
        if any_bots:
            absent = traits.absent[candidates]
            mask &= bots & shown(absent, "channel") & shown(absent, "_bot")
        if query.flags:
            mask &= (traits.flags[candidates] & query.flags) == query.flags
        kept = candidates[mask]
        if query.search:
            texts = self._haystacks(traits, kept)
            kept = kept[np.array([query.search in text for text in texts], dtype=bool)]
        return kept

    def _haystacks(self, traits: Traits, indexes: np.ndarray) -> list[str]:
        """Search texts, built once per contact: names, emails and phones never change."""
        wanted = indexes.tolist()
        self._texts.extend([None] * (max(wanted, default=-1) + 1 - len(self._texts)))
        missing = np.array([i for i in wanted if self._texts[i] is None], dtype=np.int64)
        if len(missing):
            built = haystacks(self._seed, traits.take(missing), missing)
            for index, text in zip(missing.tolist(), built, strict=True):
                self._texts[index] = text
        return [self._texts[i] for i in wanted]
