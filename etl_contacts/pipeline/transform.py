"""Raw contact records -> typed pandas frames, plus rejects. No HTTP, no SQL.

Every record ends in exactly one place: `contacts` (with its tags, attributes and segments),
`rejects` (whole, with a reason), `superseded` (a differing copy of a contact that lost to a newer
one in the same batch), or the `collapsed` count (a copy identical to the one kept), so that the
loader can count each where it ends. Nothing raises on bad input. NUL bytes, which PostgreSQL
refuses in text and JSONB, are removed, and the contact is loaded.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import overload

import orjson
import pandas as pd
import phonenumbers

from etl_contacts.timestamps import CREATED_AT, LAST_SEEN_AT, parse_ms
from etl_contacts.warehouse.frames import CONTACT_COLUMNS, REJECT_COLUMNS, Frames

OBJECT_ID = re.compile(r"[0-9a-f]{24}")
FUTURE_TOLERANCE = timedelta(days=1)
KEY_BYTES = 2_000
"""The longest tag, attribute key or segment id a contact may have: each is part of its table's
primary key, and a PostgreSQL index entry holds about 2.7 kB (one longer and incompressible
failed the whole load)."""
TIMESTAMP_COLUMNS = ("last_order_at", "created_at", "updated_at", "last_seen_at")


class Rejected(Exception):  # noqa: N818 (a verdict, not a failure of the program)
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def normalize(
    records: Sequence[object],
    *,
    account: str,
    pii_key: bytes | None = None,
    now: datetime | None = None,
) -> Frames:
    """Typed frames for a batch; within it, the newest version of a contact wins. `now`: the
    present on the source's clock when it is ahead of ours (a date later than that, by more than
    FUTURE_TOLERANCE, is rejected); ours by default."""
    present = datetime.now(UTC)
    now = present if now is None else max(now, present)
    contacts: list[tuple[object, ...]] = []
    tags: list[tuple[object, ...]] = []
    attributes: list[tuple[object, ...]] = []
    segments: list[tuple[object, ...]] = []
    rejects: list[tuple[str, str | None, str, str, str]] = []
    for item in records:
        try:
            row, children = _contact(item, account, pii_key, now)
        except Rejected as verdict:
            rejects.append(_reject(item, account, verdict))
            continue
        version = len(contacts)
        contacts.append(row)
        contact_id = row[1]
        tags.extend((version, account, contact_id, tag) for tag in children.tags)
        attributes.extend((version, account, contact_id, *kv) for kv in children.attributes)
        segments.extend((version, account, contact_id, segment) for segment in children.segments)
    frame = pd.DataFrame(contacts, columns=list(CONTACT_COLUMNS))
    for column in TIMESTAMP_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], unit="ms", utc=True)
    frame["website_visits"] = frame["website_visits"].astype("Int64")
    frame, losers = _newest_per_contact(frame)
    identical, superseded = _split_copies(losers, frame)
    winners = set(frame.index)
    return Frames(
        contacts=frame.reset_index(drop=True),
        tags=_children(tags, ["tag"], winners),
        attributes=_children(attributes, ["key", "value_text", "value_json"], winners),
        segments=_children(segments, ["segment"], winners),
        rejects=pd.DataFrame(rejects, columns=REJECT_COLUMNS),
        superseded=superseded,
        collapsed=identical,
    )


@dataclass(frozen=True)
class _Children:
    tags: list[str]
    attributes: list[tuple[str, str | None, str]]
    segments: list[str]


def _contact(
    item: object, account: str, pii_key: bytes | None, now: datetime
) -> tuple[tuple[object, ...], _Children]:
    if not isinstance(item, dict):
        raise Rejected("not_an_object", f"a {type(item).__name__} where a contact object belongs")
    contact_id = item.get("_id")
    if contact_id is None:
        raise Rejected("missing_id", "the record has no _id")
    if not isinstance(contact_id, str) or not OBJECT_ID.fullmatch(contact_id):
        raise Rejected("invalid_id", f"_id {str(contact_id)[:40]!r} is not 24 hex characters")
    item, raw, digest = _stored(item, pii_key)
    created = _timestamp(item, CREATED_AT, required=True, now=now)
    updated = _timestamp(item, "updatedAt", required=False, now=now)
    last_seen = _timestamp(item, LAST_SEEN_AT, required=False, now=now)
    details = _dict(_dict(item.get("profile")).get("userDetails"))
    contact = _dict(details.get("contact"))
    email = _email(contact.get("email"))
    phone = _phone(contact.get("phone"))
    ordered = _dict(item.get("hasOrdered"))
    children = _Children(
        tags=_texts(details.get("tags")),
        attributes=_attributes(details.get("attributes")),
        segments=_texts(item.get("segments")),
    )
    _check_keys(children)
    name = _text(details.get("userProvidedName"))
    status = _text(item.get("status"))
    agent = _text(item.get("_agentAssigned"))
    tracked = _json([status, agent, children.tags, name, email, phone])
    if pii_key is not None:
        email = _keyed(pii_key, email)
        phone = _keyed(pii_key, phone)
    row = (
        account,
        contact_id,
        _text(item.get("uuid")),
        name,
        email,
        _domain(contact.get("email")),
        phone,
        _text(item.get("channel")),
        _text(item.get("_bot")),
        status,
        agent,
        _flag(item.get("isOnline")),
        _flag(item.get("userInteracted")),
        _flag(item.get("isLiveChatActive")),
        _text(item.get("lastMessageBy")),
        _count(item.get("websiteVisits")),
        _flag(ordered.get("status")),
        parse_ms(ordered.get("lastAt")),
        created,
        updated,
        last_seen,
        raw.decode(),
        digest,
        _digest(tracked, None),
    )
    return row, children


def content_hash(item: object, pii_key: bytes | None = None) -> str | None:
    """The `content_hash` that `normalize` gives this record, without normalizing it (None for
    what it would reject before hashing): equal to the stored one, the row would not change."""
    if not isinstance(item, dict):
        return None
    try:
        return _stored(item, pii_key)[2]
    except Rejected:
        return None


def _stored(item: dict[str, object], pii_key: bytes | None) -> tuple[dict[str, object], bytes, str]:
    """The record without NULs (PostgreSQL refuses them), the JSON kept in `raw` (without the
    contact details when they are stored keyed), and the content hash. The hash covers the whole
    record, keyed in PII mode: of `raw` alone, a changed email would leave it equal, and the
    upsert would keep the old one."""
    whole = _json(item)
    if b"\\u0000" in whole:
        item = _without_nul(item)
        whole = _json(item)
    raw = whole if pii_key is None else _json(_without_contact_details(item))
    return item, raw, _digest(whole, pii_key)


def _json(value: object) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise Rejected("unserializable", f"the record cannot be stored as JSON ({exc})") from None


@overload
def _without_nul(value: dict[str, object]) -> dict[str, object]: ...
@overload
def _without_nul(value: object) -> object: ...
def _without_nul(value: object) -> object:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    return value


def _timestamp(item: dict[str, object], field: str, *, required: bool, now: datetime) -> int | None:
    value = item.get(field)
    if value is None and not required:
        return None
    millis = parse_ms(value)
    if millis is None:
        raise Rejected("unparseable_date", f"{field} {str(value)[:60]!r} is not an ISO 8601 date")
    if millis > (now + FUTURE_TOLERANCE).timestamp() * 1000:
        raise Rejected("future_date", f"{field} {value!r} lies in the future")
    return millis


def _check_keys(children: _Children) -> None:
    keys = (
        ("tag", children.tags),
        ("attribute key", [key for key, _, _ in children.attributes]),
        ("segment id", children.segments),
    )
    for name, texts in keys:
        for text in texts:
            size = len(text.encode("utf-8", "surrogatepass"))
            if size > KEY_BYTES:
                raise Rejected(
                    "key_too_long",
                    f"a {name} of {size:,} bytes, longer than the {KEY_BYTES:,} an index holds",
                )


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    return str(value)


def _texts(value: object) -> list[str]:
    """Distinct texts of a list, sorted: a tag given twice is one row of the child table."""
    return sorted({text for text in map(_text, _list(value)) if text})


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if abs(value) < 2**31 else None


def _email(value: object) -> str | None:
    return value.strip().lower() or None if isinstance(value, str) else None


def _domain(value: object) -> str | None:
    email = _email(value)
    return email.rpartition("@")[2] or None if email and "@" in email else None


def _phone(value: object) -> str | None:
    """E.164 from the platform's {prefix, number}, or from one text that starts with its
    country code ("+91 ...", as other brands send it: without the "+", a national number could
    be read as another country's); None when it is not a possible number."""
    phone = _dict(value)
    written = (
        value
        if isinstance(value, str) and value.lstrip().startswith("+")
        else f"{_text(phone.get('prefix')) or ''}{_text(phone.get('number')) or ''}"
    )
    digits = re.sub(r"\D", "", written)
    if not 6 <= len(digits) <= 17:
        return None
    try:
        parsed = phonenumbers.parse(f"+{digits}")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _attributes(value: object) -> list[tuple[str, str | None, str]]:
    latest: dict[str, object] = {}
    for entry in _list(value):
        key = _text(_dict(entry).get("key"))
        if key is not None:
            latest[key] = _dict(entry).get("value")
    return [(key, _value_text(v), _json(v).decode()) for key, v in latest.items()]


def _value_text(value: object) -> str | None:
    """Strings as they are, other values as their JSON text, null as NULL."""
    if value is None:
        return None
    return value if isinstance(value, str) else _json(value).decode()


def _keyed(key: bytes, value: str | None) -> str | None:
    return None if value is None else hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def _digest(data: bytes, key: bytes | None) -> str:
    if key is not None:
        return hmac.new(key, data, hashlib.sha256).hexdigest()[:32]
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _without_contact_details(item: dict[str, object]) -> dict[str, object]:
    details = dict(_dict(_dict(item.get("profile")).get("userDetails")))
    contact = {
        k: v for k, v in _dict(details.get("contact")).items() if k not in ("email", "phone")
    }
    details["contact"] = contact
    profile = {**_dict(item.get("profile")), "userDetails": details}
    return {**item, "profile": profile}


def _reject(item: object, account: str, verdict: Rejected) -> tuple[str, str | None, str, str, str]:
    contact_id = item.get("_id") if isinstance(item, dict) else None
    try:
        record = orjson.dumps(_without_nul(item), option=orjson.OPT_NON_STR_KEYS).decode()
    except (orjson.JSONEncodeError, TypeError):
        record = orjson.dumps(repr(item)[:100_000]).decode()
    text_id = _text(contact_id)
    return (
        account,
        text_id[:64].replace("\x00", "") if text_id else None,
        verdict.reason,
        verdict.detail.replace("\x00", ""),
        record,
    )


def _newest_per_contact(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Duplicates in one batch: keep the version with the latest updatedAt / lastSeenAt (of equal
    ones, the last received, as the upsert lets an equally recent record win); also return the
    versions that lost."""
    recency = frame[["updated_at", "last_seen_at"]].max(axis=1)
    ordered = (
        frame.assign(_recency=recency)
        .sort_values("_recency", kind="stable", na_position="first")
        .drop(columns="_recency")
    )
    lost = ordered.duplicated("contact_id", keep="last")
    return ordered[~lost], ordered[lost]


def _split_copies(losers: pd.DataFrame, kept: pd.DataFrame) -> tuple[int, pd.DataFrame]:
    """The copies that lost: how many are identical to the kept one (nothing new: unchanged), and
    the differing ones as rejects that name both versions' times."""
    pairs = losers.merge(
        kept[["contact_id", "content_hash", "updated_at", "last_seen_at"]],
        on="contact_id",
        suffixes=("", "_kept"),
    )
    differ = pairs[pairs["content_hash"] != pairs["content_hash_kept"]]
    rows = [
        (
            account,
            contact_id,
            "superseded_in_batch",
            f"{_times(updated, seen)}: not newer than the copy kept from the same batch "
            f"({_times(updated_kept, seen_kept)})",
            raw,
        )
        for account, contact_id, updated, seen, raw, updated_kept, seen_kept in differ[
            [
                "account",
                "contact_id",
                "updated_at",
                "last_seen_at",
                "raw",
                "updated_at_kept",
                "last_seen_at_kept",
            ]
        ].itertuples(index=False, name=None)
    ]
    return len(pairs) - len(differ), pd.DataFrame(rows, columns=REJECT_COLUMNS)


def _times(updated: datetime | None, last_seen: datetime | None) -> str:
    """A record's recency as a reject's detail gives it, e.g. `updatedAt 2024-05-01T10:00:00.000Z,
    lastSeenAt none`: the warehouse's SQL writes the same format."""
    return f"updatedAt {_iso(updated)}, lastSeenAt {_iso(last_seen)}"


def _iso(moment: datetime | None) -> str:
    if moment is None or pd.isna(moment):
        return "none"
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def _children(
    rows: list[tuple[object, ...]], value_columns: list[str], winners: set[int]
) -> pd.DataFrame:
    """Child rows of the winning version of each contact (the version is the row's position)."""
    frame = pd.DataFrame(rows, columns=["version", "account", "contact_id", *value_columns])
    frame = frame[frame["version"].isin(winners)].drop(columns="version")
    return frame.drop_duplicates(subset=["contact_id", value_columns[0]]).reset_index(drop=True)
