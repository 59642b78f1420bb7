"""A contact's userDetails: name, email, phone and attributes, and what searchText looks through.

Records (render.py) and search (filters.py) build these from the same functions and the same
draws, so a search always agrees with the record a client receives.
"""

from __future__ import annotations

import numpy as np
import orjson

from etl_contacts.sandbox.draws import ATTRIBUTES, LOOKS, Draws
from etl_contacts.sandbox.traits import Traits
from etl_contacts.sandbox.vocabulary import (
    ATTRIBUTE_VARIANTS,
    CITIES,
    NOTES,
    PHONE_JUNK,
    PHONE_PREFIXES,
    SCRIPTS,
    SOURCES,
)

NAME_MISSING, EMAIL_MISSING, PHONE_MISSING = 4, 4, 8  # the forms that drop the key
ATTRIBUTE_KEYS = ("city", "score", "opt_in", "meta", "empty", "plan", "age", "notes")


def to_json(value: object) -> str:
    return orjson.dumps(value).decode()


def name(script: int, first: int, last: int, form: int) -> str | None:
    firsts, lasts, _ = SCRIPTS[script]
    full = f"{firsts[first]} {lasts[last]}"
    if form == 0:
        return full
    return (full, f"  {full} ", full.upper(), None, None)[form]


def email(script: int, first: int, last: int, form: int, index: int) -> str | None:
    if form == 1:
        return f"user{index}@mail{index % 5}.example.org"
    if form in (3, EMAIL_MISSING):
        return None
    firsts, lasts, domain = SCRIPTS[script]
    local = f"{firsts[first]}.{lasts[last]}{index}".replace(" ", "")
    if form == 0:
        return f"{local}@{domain}"
    return {2: f" {local}@{domain.upper()} ", 5: "", 6: f"{local}@"}[form]


def phone(form: int, digits: int, prefix: str, junk: str) -> dict[str, str | None] | None:
    number = f"{digits:010d}"
    if form == 0:
        return {"number": number, "prefix": prefix}
    if form in (7, PHONE_MISSING):
        return None
    country = prefix.lstrip("+0") or "91"
    shown = {
        1: (number, f"+{country}"),
        2: (f"{number[:5]} {number[5:]}", prefix),
        3: (f"{number[:3]}-{number[3:6]}-{number[6:]}", prefix),
        4: (f"+{country} {number[:5]}-{number[5:]}", ""),
        5: (f"({number[:3]}) {number[3:6]} {number[6:]}", prefix),
        6: (junk, prefix),
        9: (number, None),
    }[form]
    return {"number": shown[0], "prefix": shown[1]}


# JSON of every name (script, first, last, form) and prefix, so records skip encoding them
NAMES_JSON = [
    [
        [
            [to_json(name(script, first, last, form)) for form in range(5)]
            for last in range(len(lasts))
        ]
        for first in range(len(firsts))
    ]
    for script, (firsts, lasts, _) in enumerate(SCRIPTS)
]
PREFIXES_JSON = [to_json(p) for p in PHONE_PREFIXES]


def phone_draws(draw: Draws) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Digits, prefix and junk: the first draws of the LOOKS stream, for records and search."""
    return (
        draw.bits(63) % np.uint64(10**10),
        draw.below(len(PHONE_PREFIXES)),
        draw.below(len(PHONE_JUNK)),
    )


def haystacks(seed: int, rows: Traits, indexes: np.ndarray) -> list[str]:
    """What `searchText` looks through, case-folded: name, email, number, prefix + number."""
    digits, prefix, junk = phone_draws(Draws(seed, LOOKS, indexes))
    texts = []
    for values in zip(
        indexes.tolist(),
        rows.script.tolist(),
        rows.first.tolist(),
        rows.last.tolist(),
        rows.name_form.tolist(),
        rows.email_form.tolist(),
        rows.phone_form.tolist(),
        digits.tolist(),
        prefix.tolist(),
        junk.tolist(),
        strict=True,
    ):
        index, script, first, last, name_form, email_form, phone_form, number, pre, bad = values
        parts = [
            name(script, first, last, name_form),
            email(script, first, last, email_form, index),
        ]
        shown = phone(phone_form, number, PHONE_PREFIXES[pre], PHONE_JUNK[bad])
        if shown is not None:
            parts += [shown["number"], f"{shown['prefix'] or ''}{shown['number']}"]
        texts.append("\n".join(p for p in parts if isinstance(p, str)).casefold())
    return texts


def attribute_variants(seed: int) -> list[str]:
    """JSON of a pool of attribute lists: strings, numbers, booleans, null, nested objects."""
    draw = Draws(seed, ATTRIBUTES, np.arange(ATTRIBUTE_VARIANTS))
    keep = [draw.chance(0.35).tolist() for _ in ATTRIBUTE_KEYS]
    city, source, note = (draw.below(len(p)).tolist() for p in (CITIES, SOURCES, NOTES))
    score, opt_in = np.round(draw.uniform() * 10, 2).tolist(), draw.chance(0.5).tolist()
    plan, plan_text = (draw.below(3) + 1).tolist(), draw.chance(0.1).tolist()
    age, age_text = (draw.below(60) + 18).tolist(), draw.chance(0.05).tolist()
    variants = []
    for v in range(ATTRIBUTE_VARIANTS):
        values = (
            CITIES[city[v]],
            score[v],
            opt_in[v],
            {"source": SOURCES[source[v]], "utm": {"campaign": f"c{plan[v]}", "depth": {"n": 2}}},
            None,
            str(plan[v]) if plan_text[v] else plan[v],
            "thirty-two" if age_text[v] else age[v],
            NOTES[note[v]],
        )
        chosen = [
            {"key": key, "value": value}
            for position, (key, value) in enumerate(zip(ATTRIBUTE_KEYS, values, strict=True))
            if keep[position][v]
        ]
        variants.append(to_json(chosen))
    return variants
