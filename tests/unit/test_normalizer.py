"""The normalizer's worker: what a batch leaves behind when its frames go back."""

from __future__ import annotations

import copy
import gc
import types
from typing import Any

import orjson

from etl_contacts.pipeline.normalizer import _normalize_document
from etl_contacts.pipeline.transform import normalize
from etl_contacts.sandbox.data import render


def test_a_batch_is_freed_once_its_frames_are_returned() -> None:
    """A phone number phonenumbers cannot place (country code 999) raises inside it, and the
    exception it keeps holds its frame, whose callers' frames held the whole batch until the
    collector next ran: one batch more in the worker's memory, or two."""
    record: Any = copy.deepcopy(
        render(9, 1, 1_700_000_000_000, 1_700_000_500_000, 1_700_000_500_000, 0)
    )
    record["profile"]["userDetails"]["contact"]["phone"] = {"prefix": "+999", "number": "1234567"}
    gc.disable()  # only the worker's own collection may free it
    try:
        frames = _normalize_document(orjson.dumps([record]), "acme", None, None)
        left = [
            o
            for o in gc.get_objects()
            if isinstance(o, types.FrameType) and o.f_code is normalize.__code__
        ]
    finally:
        gc.enable()
    assert frames.contacts["phone_e164"].isna().all()  # the number was refused, not kept
    assert left == []
