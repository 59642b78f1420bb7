"""The request body's filters, with plausible semantics for what the docs leave open.

Lists match any-of; booleans filter only when true; neutral values ("", [], false, an empty
range) mean no filter. Date bounds: startAt inclusive, endsAt as configured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import orjson

BOT_FIELDS = {
    "_botWebsite": "website",
    "_botWhatsapp": "whatsapp",
    "_botFacebook": "facebook",
    "_botTelegram": "telegram",
}


class BadRequestError(ValueError):
    """The body cannot be understood; answered with 422 and this message."""


@dataclass(frozen=True)
class Query:
    created: tuple[int | None, int | None]
    last_seen: tuple[int | None, int | None]
    body: dict[str, object]
    key: str

    @property
    def needs_records(self) -> bool:
        """Whether a filter looks inside records (slower than the indexed date ranges)."""
        return any(_active(self.body.get(name)) for name in RECORD_FILTERS)


def parse_query(body: object) -> tuple[Query, int]:
    """The query and the page number (from 1) of a request body."""
    if not isinstance(body, dict):
        raise BadRequestError("request body must be a JSON object")
    page = body.get("page", 1)
    if not isinstance(page, int) or isinstance(page, bool) or page < 1:
        raise BadRequestError("page must be an integer from 1")
    filters = {k: v for k, v in body.items() if k != "page"}
    query = Query(
        created=_range(body.get("createdAt"), "createdAt"),
        last_seen=_range(body.get("lastSeenAt"), "lastSeenAt"),
        body=filters,
        key=orjson.dumps(filters, option=orjson.OPT_SORT_KEYS).decode(),
    )
    return query, page


def _range(value: object, name: str) -> tuple[int | None, int | None]:
    if value in (None, "", {}):
        return (None, None)
    if not isinstance(value, dict):
        raise BadRequestError(f"{name} must be an object with startAt and endsAt")
    return (_millis(value.get("startAt"), name), _millis(value.get("endsAt"), name))


def _millis(value: object, name: str) -> int | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise BadRequestError(f"{name} bounds must be ISO 8601 strings")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequestError(f"{name} bound {value!r} is not an ISO 8601 date") from exc
    if moment.tzinfo is None:
        raise BadRequestError(f"{name} bound {value!r} has no time zone")
    return int(moment.timestamp() * 1000)


def _active(value: object) -> bool:
    if isinstance(value, dict):
        return value.get("status") is True
    return bool(value)


def _details(record: dict[str, object]) -> dict[str, object]:
    profile = record.get("profile") or {}
    details = profile.get("userDetails") if isinstance(profile, dict) else None
    return details if isinstance(details, dict) else {}


def _search(record: dict[str, object], text: str) -> bool:
    details = _details(record)
    contact = details.get("contact") or {}
    phone = contact.get("phone") or {}
    haystack = " ".join(
        str(part)
        for part in (
            details.get("userProvidedName"),
            contact.get("email"),
            phone.get("prefix"),
            phone.get("number"),
        )
        if part
    )
    return text.casefold() in haystack.casefold()


def _any_of(value: object, wanted: object) -> bool:
    wanted_set = set(wanted) if isinstance(wanted, list) else set()
    if isinstance(value, list):
        return bool(wanted_set & set(value))
    return value in wanted_set


def _bot_filter(channel: str) -> Callable[[dict[str, object], object], bool]:
    return lambda record, wanted: (
        record.get("channel") == channel and _any_of(record.get("_bot"), wanted)
    )


def matches(record: dict[str, object], query: Query) -> bool:
    """Whether a record passes every non-date filter of the query."""
    body = query.body
    for name, wanted in body.items():
        if not _active(wanted) or name not in RECORD_FILTERS:
            continue
        if not RECORD_FILTERS[name](record, wanted):
            return False
    return True


RECORD_FILTERS = {
    "searchText": lambda r, v: isinstance(v, str) and _search(r, v),
    "tags": lambda r, v: _any_of(_details(r).get("tags") or [], v),
    "status": lambda r, v: _any_of(r.get("status"), v),
    "_agentAssigned": lambda r, v: _any_of(r.get("_agentAssigned"), v),
    "segments": lambda r, v: _any_of(r.get("segments") or [], v),
    "lastMessageBy": lambda r, v: _any_of(r.get("lastMessageBy"), v),
    "isOnline": lambda r, v: r.get("isOnline") is True,
    "userInteracted": lambda r, v: r.get("userInteracted") is True,
    "isLiveChatActive": lambda r, v: r.get("isLiveChatActive") is True,
    "hasOrdered": lambda r, v: (r.get("hasOrdered") or {}).get("status") is True,
    **{name: _bot_filter(channel) for name, channel in BOT_FIELDS.items()},
}
