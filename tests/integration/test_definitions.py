"""The Dagster project as the UI and the CLI load it: the job, its checks, metadata, schedule."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from etl_contacts.defs.definitions import build_definitions, range_tags
from etl_contacts.defs.resources import WarehouseResource
from etl_contacts.sandbox import SandboxConfig, SandboxServer
from etl_contacts.settings import Settings
from etl_contacts.timestamps import local_day

TOKEN = "feedfacefeedfacefeedface"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(contacts=400, days=4, seed=2, token=TOKEN)) as server:
        yield server


@pytest.fixture
def env(sandbox: SandboxServer, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("EXPRESS_CHAT_API_TOKEN", TOKEN)
    monkeypatch.setenv("EXPRESS_CHAT_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("ETL_CONTACTS_DATABASE_URL", database_url)
    return Settings.from_env({"ETL_CONTACTS_START_DATE": "2026-01-01"})


def _run(
    settings: Settings,
    days: int = 2,
    *,
    nightly: bool = False,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    defs = build_definitions(settings)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    first = yesterday - timedelta(days=days - 1)
    return defs.resolve_job_def("sync_contacts").execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(),
        tags=range_tags(first.isoformat(), yesterday.isoformat(), nightly=nightly),
        raise_on_error=False,
    )


def test_nightly_runs_verify_every_day_within_the_budget(env: Settings) -> None:
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    settings = replace(env, start_date=yesterday - timedelta(days=13), reverify_days=7)
    reverified, verified = [], []
    with dg.DagsterInstance.ephemeral() as instance:
        for _ in range(settings.reverify_days):
            result = _run(settings, days=1, nightly=True, instance=instance)
            assert result.success
            meta = result.get_asset_materialization_events()[0].materialization.metadata
            reverified.append(meta["reverified_days"].value)
            verified.append(_checks(result)["verified_within_budget"])
            assert meta["lookback_from"].value == str(yesterday - timedelta(days=2))
    # 14 days, a seventh of them a night besides yesterday: every day verified after 7 nights
    assert reverified == [2] * 7
    assert verified == [False] * 6 + [True]


def _count(value: dg.MetadataValue) -> int:
    """An integer metadata value."""
    count = value.value
    assert isinstance(count, int), value
    return count


def _evaluations(result: dg.ExecuteInProcessResult) -> list[dg.AssetCheckEvaluation]:
    return [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    """Whether each check passed: on every day, for the checks evaluated per day."""
    passed: dict[str, bool] = {}
    for evaluation in _evaluations(result):
        name = evaluation.check_name
        passed[name] = passed.get(name, True) and evaluation.passed
    return passed


def _days(result: dg.ExecuteInProcessResult, check: str) -> dict[str | None, bool]:
    """A check's result on each partition (None: one result for the run)."""
    return {e.partition: e.passed for e in _evaluations(result) if e.check_name == check}


def test_a_run_reports_metadata_and_passes_its_checks(env: Settings) -> None:
    result = _run(env)
    assert result.success
    assert _checks(result) == {
        "children_have_contacts": True,
        "no_future_timestamps": True,
        "window_reconciliation": True,
        "day_reconciliation": True,
        "reject_rate": True,
        "holes_repaired": True,
        "deletion_guard": True,
        "no_suspect_days": True,
        "freshness": True,
        # two days of a history since 2026-01-01 read: the others were never verified
        "verified_within_budget": False,
    }
    # the checks about a day's rows have a result for each day; the others one for the run
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    days = {(yesterday - timedelta(days=n)).isoformat(): True for n in (1, 0)}
    assert _days(result, "holes_repaired") == days
    assert _days(result, "no_future_timestamps") == days
    assert _days(result, "day_reconciliation") == days
    assert _days(result, "window_reconciliation") == {None: True}
    reconciliation = next(
        e.metadata for e in _evaluations(result) if e.check_name == "window_reconciliation"
    )
    terms = ("inserted", "updated", "unchanged", "refused_older", "rejected")
    counts = {key: _count(reconciliation[key]) for key in ("received", *terms)}
    assert counts["received"] > 0
    assert counts["received"] == sum(counts[key] for key in terms)
    contacts = next(
        m
        for m in result.asset_materializations_for_node("load_contacts_default")
        if m.asset_key == dg.AssetKey("contacts")
    )
    meta = contacts.metadata
    assert _count(meta["dagster/row_count"]) > 0
    assert meta["dagster/table_name"].value == "express_chat.contacts"
    schema = meta["dagster/column_schema"].value
    assert isinstance(schema, dg.TableSchema), schema
    columns = {c.name: c.description for c in schema.columns}
    phone = columns["phone_e164"]
    assert phone is not None and phone.startswith("Phone in E.164"), phone
    assert {
        "inserted",
        "updated",
        "unchanged",
        "rejected",
        "requests",
        "retries",
        "seconds",
    } <= set(meta)
    # what the run found the server to do, against what the sandbox does: newest activity
    # first, pages of 20, both ranges applied
    assert meta["server/sort"].value == "lastSeenAt descending"
    assert meta["server/page_size"].value == "20"
    assert meta["server/ranges_combined"].value == "yes"


def test_a_blocking_check_fails_on_the_day_of_bad_data(env: Settings, database_url: str) -> None:
    assert _run(env).success
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    day_before = yesterday - timedelta(days=1)
    engine = sa.create_engine(database_url)

    def plant(day: date) -> None:
        """A future last_seen_at on a contact created that day: it also wins every upsert, so
        no sync repairs it."""
        start, end = local_day(day, env.timezone)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE express_chat.contacts SET last_seen_at = now() + interval '1 year' "
                    "WHERE contact_id = (SELECT min(contact_id) FROM express_chat.contacts "
                    "WHERE created_at >= :start AND created_at < :end)"
                ),
                {"start": start, "end": end},
            )

    plant(yesterday)
    result = _run(env)
    days = {day_before.isoformat(): True, yesterday.isoformat(): False}
    assert _days(result, "no_future_timestamps") == days
    assert not result.success, "a blocking check failed: the run must say so"
    # a day the run did not read fails all the same, on its own partition
    plant(day_before)
    days = {day_before.isoformat(): False, yesterday.isoformat(): False}
    assert _days(_run(env, days=1), "no_future_timestamps") == days
    checks = _checks(result)
    assert checks["children_have_contacts"] is True
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO express_chat.contact_tags (account, contact_id, tag) "
                "VALUES ('default', 'no-such-contact', 'vip')"
            )
        )
    assert _checks(_run(env, days=1))["children_have_contacts"] is False


def test_the_schedule_catches_up_missed_days(env: Settings) -> None:
    defs = build_definitions(env)
    schedule = defs.resolve_schedule_def("nightly_sync_contacts")
    with dg.instance_for_test() as instance:
        _assert_catch_up(schedule, instance)


def _first_request(
    schedule: dg.ScheduleDefinition, instance: dg.DagsterInstance, now: datetime
) -> dg.RunRequest:
    requests = schedule.evaluate_tick(
        dg.build_schedule_context(instance=instance, scheduled_execution_time=now)
    ).run_requests
    assert requests, "the tick requested a run"
    return requests[0]


def _assert_catch_up(schedule: dg.ScheduleDefinition, instance: dg.DagsterInstance) -> None:
    now = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    request = _first_request(schedule, instance, now)
    yesterday = (now - timedelta(days=1)).date()
    assert request.tags["dagster/asset_partition_range_end"] == yesterday.isoformat()
    assert (
        request.tags["dagster/asset_partition_range_start"]
        == (yesterday - timedelta(days=6)).isoformat()
    )
    for day in range(7):
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                "contacts", partition=(yesterday - timedelta(days=day)).isoformat()
            )
        )
    instance.report_runless_asset_event(
        dg.AssetMaterialization("contacts", partition=yesterday.isoformat())
    )
    healed = _first_request(schedule, instance, now)
    assert healed.tags["dagster/asset_partition_range_start"] == yesterday.isoformat()


def test_several_accounts_get_their_own_assets_jobs_and_pools() -> None:
    settings = Settings.from_env({"ETL_CONTACTS_ACCOUNTS": "acme=ACME_TOKEN,beta=BETA_TOKEN"})
    defs = build_definitions(settings)
    assert defs.resolve_job_def("sync_contacts_acme").partitions_def is not None
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"acme/contacts", "beta/contacts", "beta/contact_tags"} <= keys
    for account in ("acme", "beta"):
        sync = defs.resolve_assets_def(dg.AssetKey([account, "contacts"]))
        assert sync.op.pool == f"express_chat_{account}"


def test_a_long_backfill_is_one_run_per_configured_days() -> None:
    settings = Settings.from_env({"ETL_CONTACTS_MAX_DAYS_PER_RUN": "30"})
    sync = build_definitions(settings).resolve_assets_def(dg.AssetKey("contacts"))
    assert sync.backfill_policy == dg.BackfillPolicy.multi_run(max_partitions_per_run=30)
    default = build_definitions(Settings.from_env({})).resolve_assets_def(dg.AssetKey("contacts"))
    policy = default.backfill_policy
    assert policy is not None and policy.max_partitions_per_run is not None, policy
    assert policy.max_partitions_per_run >= 366


def test_a_failed_run_is_recorded_and_announced(
    env: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    posted: list[bytes] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posted.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            """Quiet."""

    hook = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    monkeypatch.setenv("ETL_CONTACTS_ALERT_WEBHOOK", f"http://127.0.0.1:{hook.server_port}/")
    monkeypatch.setenv("EXPRESS_CHAT_API_TOKEN", "0" * 24)
    defs = build_definitions(env)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("sync_contacts").execute_in_process(
            instance=instance, tags=range_tags(yesterday, yesterday), raise_on_error=False
        )
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
        sensor = defs.resolve_sensor_def("record_sync_failures")
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_event=failure,
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            resources={"warehouse": WarehouseResource(database_url=database_url)},
        )
        sensor(context.for_run_failure())
    hook.shutdown()
    with sa.create_engine(database_url).connect() as conn:
        status, error = conn.execute(
            sa.text("SELECT status, error FROM express_chat.sync_runs WHERE run_id = :r"),
            {"r": result.run_id},
        ).one()
    assert status == "failed" and "rejected the token" in error
    (message,) = posted
    assert b"rejected the token" in message and b"0" * 24 not in message


def test_dagster_validates_the_definitions(repo_root: Path) -> None:
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [dagster, "definitions", "validate", "-w", "workspace.yaml"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_canary_token_reaches_no_event_row_or_log(
    env: Settings,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    canary = "ca11ab1eca11ab1eca11ab1e"
    monkeypatch.setenv("EXPRESS_CHAT_API_TOKEN", canary)
    caplog.set_level("DEBUG")
    defs = build_definitions(env)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("sync_contacts").execute_in_process(
            instance=instance, tags=range_tags(yesterday, yesterday), raise_on_error=False
        )
        events = [str(record) for record in instance.all_logs(result.run_id)]
    assert not result.success and events
    with sa.create_engine(database_url).connect() as conn:
        rows = conn.execute(
            sa.text("SELECT row_to_json(r)::text FROM express_chat.sync_runs r")
        ).scalars()
        stored = list(rows)
    captured = [*events, *stored, *(r.getMessage() for r in caplog.records)]
    assert stored and not [text for text in captured if canary in text]
