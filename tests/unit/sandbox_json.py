"""Typed reading of the sandbox's contact JSON, for the tests beside this module.

A record is a JSON object whose values a test reads as it knows them to be: each helper asserts
that shape (so a test fails on a record that lacks it) and gives the type checker the value's
type, in place of a cast.
"""

from __future__ import annotations

JsonObject = dict[str, object]


def as_object(value: object) -> JsonObject:
    assert isinstance(value, dict), value
    return value


def as_array(value: object) -> list[object]:
    """A JSON array; [] for null (or a missing key's None)."""
    shown = [] if value is None else value
    assert isinstance(shown, list), value
    return shown


def as_text(value: object) -> str:
    assert isinstance(value, str), value
    return value


def details(record: JsonObject) -> JsonObject:
    """profile.userDetails, an object in every record."""
    return as_object(as_object(record["profile"])["userDetails"])


def contact(record: JsonObject) -> JsonObject:
    """userDetails.contact; {} when it is null or missing."""
    return as_object(details(record).get("contact") or {})
