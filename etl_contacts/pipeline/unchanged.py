"""Records that would not change their stored row, recognized before the transform.

A re-run of days already loaded receives every record again, and normalizing and upserting
them all cost nearly as much as the first load, to write nothing. The content hash `normalize`
would give a record takes a sorted JSON dump and a hash to compute; a record whose hash equals
the stored row's (a contact not marked deleted) is only remembered as seen, so soft deletes
still know the source returned it, and counted unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from etl_contacts.pipeline.transform import content_hash
from etl_contacts.source import CREATED_AT
from etl_contacts.timestamps import parse_ms
from etl_contacts.warehouse import Seen

StoredHashes = Callable[[list[str]], dict[str, str]]


@dataclass(frozen=True)
class Split:
    changed: list[object]
    """Records to normalize and load: new, changed, deleted before, or not recognizable."""
    unchanged: list[Seen]


def split_unchanged(
    records: Sequence[object], stored_hashes: StoredHashes, pii_key: bytes | None
) -> Split:
    keyed: list[tuple[object, str | None, str | None]] = []
    for record in records:
        contact_id = record.get("_id") if isinstance(record, dict) else None
        if isinstance(contact_id, str):
            keyed.append((record, contact_id, content_hash(record, pii_key)))
        else:
            keyed.append((record, None, None))
    ids = sorted({contact_id for _, contact_id, digest in keyed if contact_id and digest})
    stored = stored_hashes(ids) if ids else {}
    changed: list[object] = []
    unchanged: list[Seen] = []
    for record, contact_id, digest in keyed:
        if contact_id and digest and stored.get(contact_id) == digest:
            unchanged.append((contact_id, _created(record)))
        else:
            changed.append(record)
    return Split(changed, unchanged)


def _created(record: object) -> datetime | None:
    millis = parse_ms(record.get(CREATED_AT)) if isinstance(record, dict) else None
    return None if millis is None else datetime.fromtimestamp(millis / 1000, UTC)
