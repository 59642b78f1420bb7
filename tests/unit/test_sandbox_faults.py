"""Fault plans, configuration checks and presets, without a server."""

from __future__ import annotations

import time
from collections import Counter
from email.utils import parsedate_to_datetime

import orjson
import pytest

from etl_contacts.sandbox import FAULT_KINDS, SILENT_FAULT_KINDS, SandboxConfig, preset
from etl_contacts.sandbox.faults import FaultPlan

TEMPLATE = {
    "_id": "6650c0de0000000000000001",
    "createdAt": "2024-05-01T00:00:00.000Z",
    "profile": {"userDetails": {"userProvidedName": "Ana"}},
}


def draws(config: SandboxConfig, n: int) -> list[str | None]:
    plan = FaultPlan(config)
    return [plan.draw() for _ in range(n)]


def test_the_same_seed_draws_the_same_faults() -> None:
    rates = {"429": 0.2, "reset": 0.1, "malformed": 0.1}
    one = draws(SandboxConfig(seed=4, faults=rates), 300)
    assert one == draws(SandboxConfig(seed=4, faults=rates), 300)
    assert one != draws(SandboxConfig(seed=5, faults=rates), 300)


def test_faults_come_at_their_rates_and_only_theirs() -> None:
    counts = Counter(draws(SandboxConfig(faults={"429": 0.25, "503": 0.05}), 8000))
    assert set(counts) == {"429", "503", None}
    assert abs(counts["429"] / 8000 - 0.25) < 0.03
    assert abs(counts["503"] / 8000 - 0.05) < 0.015


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"faults": {"teapot": 0.1}}, r"unknown fault kinds \['teapot'\]"),
        ({"faults": {"429": 0.6, "500": 0.6}}, "their sum is at most 1"),
        ({"faults": {"500": -1}}, "rates, latencies and delays cannot be negative"),
        ({"activity_rate": -0.1}, "rates, latencies and delays cannot be negative"),
        ({"sort": "name"}, "unknown sort 'name'"),
        ({"page_size": 0}, "days and page_size must be at least 1"),
        ({"days": 0}, "days and page_size must be at least 1"),
        ({"contacts": -1}, "contacts must be from 0 to"),
        ({"latency_ms": -5}, "rates, latencies and delays cannot be negative"),
        ({"never_active_share": 1.5}, "never_active_share is a share of the contacts"),
        ({"never_active_share": -0.1}, "never_active_share is a share of the contacts"),
    ],
)
def test_impossible_configurations_are_refused(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SandboxConfig(**settings)  # type: ignore[arg-type]


def test_malformed_records_break_in_every_documented_way() -> None:
    plan = FaultPlan(SandboxConfig(seed=2))
    broken = [plan.malformed_record(dict(TEMPLATE)) for _ in range(400)]
    objects = [b for b in broken if isinstance(b, dict)]
    text = [orjson.dumps(b).decode() for b in objects]
    assert any(not isinstance(b, dict) for b in broken), "items that are no object"
    assert any("_id" not in b for b in objects)
    assert any(b.get("_id") == 12345 for b in objects)
    assert any("2024-13-45" in t for t in text)
    assert any("\\u0000" in t for t in text)
    assert any(len(t) > 100_000 for t in text)
    assert any(_depth(b) > 100 for b in objects)
    assert all(b.get("_id") != TEMPLATE["_id"] for b in objects), "never a real contact's id"
    report = plan.report()
    assert report["malformed"] == broken
    assert report["faults"] == {"malformed": 400}


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


def test_retry_after_is_seconds_or_an_http_date() -> None:
    plan = FaultPlan(SandboxConfig(retry_after_seconds=2))
    before = time.time()
    values = {plan.retry_after() for _ in range(30)}
    after = time.time()
    assert "2" in values
    dates = [parsedate_to_datetime(v).timestamp() for v in values if v != "2"]
    assert dates, "one value in three is a date"
    # two seconds from when it was asked, to the whole second an HTTP date holds
    assert all(before + 1 <= d <= after + 2 for d in dates)


def test_latency_is_the_fixed_part_plus_some_jitter() -> None:
    plan = FaultPlan(SandboxConfig(latency_ms=20, jitter_ms=10))
    delays = [plan.delay_seconds() for _ in range(200)]
    assert all(0.020 <= d <= 0.030 for d in delays)
    assert len(set(delays)) > 100


def test_presets() -> None:
    calm, busy, hostile = preset("calm"), preset("busy"), preset("hostile")
    assert calm.faults == {}
    assert calm.activity_rate == calm.create_rate == calm.delete_rate == 0
    assert busy.faults == {}
    assert min(busy.activity_rate, busy.create_rate, busy.delete_rate) > 0
    assert set(hostile.faults) == set(FAULT_KINDS)
    assert hostile.activity_rate > 0
    assert not set(SILENT_FAULT_KINDS) & set(FAULT_KINDS), "a hidden record is asked for by name"
    failing = sum(r for kind, r in hostile.faults.items() if kind not in ("malformed", "duplicate"))
    assert failing**8 < 1e-4, "a client making 8 attempts per request completes"
    base = SandboxConfig(contacts=77, seed=9)
    assert (preset("hostile", base).contacts, preset("hostile", base).seed) == (77, 9)
    with pytest.raises(ValueError, match="unknown preset 'chaotic'"):
        preset("chaotic")  # type: ignore[arg-type]
