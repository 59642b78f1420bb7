"""Asset checks on the contacts table, evaluated after each sync in the same run.

Blocking checks (children without a contact, future timestamps, reconciliations) stop the
downstream summary when they fail: those mean the table cannot be trusted. Reject rate, holes
repaired and freshness warn; `verified_within_budget` fails when some day was not re-read
within the freshness budget.

Checks about a day's rows (future timestamps, every contact of the day's read stored, holes
repaired) have a result per day the run read, so the UI shows which day failed (a future
timestamp also on any other day that has one); the others are about the run or the account.
A day the run left unverified (an outage) passes with `read_completely` false: `no_suspect_days`
warns of it. The run's ledger (`window_reconciliation`) and its reject rate
stay per run: records are counted as batches load, a batch mixes days, and a rejected record
may have no readable day at all.
"""

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache, partial

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from etl_contacts.defs.assets import FRESH_WITHIN
from etl_contacts.defs.resources import WarehouseResource
from etl_contacts.pipeline.nightly import account_staleness
from etl_contacts.settings import Settings
from etl_contacts.warehouse import Warehouse, quality

MAX_REJECT_RATE = 0.05
# every check is given the run id, also those that ask about the account as a whole
Check = Callable[[Warehouse, str], dg.AssetCheckResult]
# a check about days: given what the run's complete reads found on each day they verified,
# and the days to judge, a result for each of them
DayCheck = Callable[
    [Warehouse, Mapping[date, quality.DayRead], Sequence[date]], dict[date, dg.AssetCheckResult]
]


def build_checks(
    contacts: dg.AssetKey,
    account: str,
    settings: Settings,
    partitions_def: dg.TimeWindowPartitionsDefinition,
) -> list[dg.AssetChecksDefinition]:
    """The checks of one account's contacts, evaluated together in one step after the sync:
    one step and one connection instead of one per check (Dagster's per-step events were a
    second of a nightly run's five)."""

    def children_have_contacts(warehouse: Warehouse, _run_id: str) -> dg.AssetCheckResult:
        """Every tag, attribute and segment row belongs to a stored contact."""
        orphans = quality.orphan_children(warehouse, account)
        return dg.AssetCheckResult(passed=orphans == 0, metadata={"orphan_rows": orphans})

    def window_reconciliation(warehouse: Warehouse, run_id: str) -> dg.AssetCheckResult:
        """Every record this run received is counted exactly once, where it ended: inserted,
        updated, unchanged, refused as older than the stored row, or rejected."""
        counts = quality.run_counts(warehouse, run_id)
        accounted = sum(counts[k] for k in quality.OUTCOMES)
        return dg.AssetCheckResult(
            passed=accounted == counts["records"],
            metadata={
                "received": counts["records"],
                **{k: counts[k] for k in quality.OUTCOMES},
                "accounted_for": accounted,
            },
        )

    def reject_rate(warehouse: Warehouse, run_id: str) -> dg.AssetCheckResult:
        """Less than 5% of the records this run received were rejected."""
        counts = quality.run_counts(warehouse, run_id)
        rate = counts["rejected"] / counts["records"] if counts["records"] else 0.0
        return dg.AssetCheckResult(
            passed=rate < MAX_REJECT_RATE,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"reject_rate": dg.MetadataValue.float(round(rate, 4))},
        )

    def deletion_guard(warehouse: Warehouse, run_id: str) -> dg.AssetCheckResult:
        """This run held no deletions back: the contacts one run found missing are deleted only
        while they are at most ETL_CONTACTS_MAX_DELETE_PERCENT of the account's live contacts;
        beyond it, none of them is (they stay missing), and this fails with the number until a
        run is allowed once (`etl-contacts sync --allow-mass-delete`)."""
        counts = quality.run_counts(warehouse, run_id)
        held = counts["deletions_held"]
        return dg.AssetCheckResult(
            passed=held == 0,
            metadata={
                "deletions_held": held,
                "deleted": counts["deleted"],
                "found_missing": counts["missing"],
                "awaiting_second_look": warehouse.missing_count(account),
                "max_delete_percent": dg.MetadataValue.float(settings.max_delete_percent),
                "to_let_them_through": "etl-contacts sync --allow-mass-delete"
                if held
                else "nothing to do",
            },
        )

    def no_suspect_days(warehouse: Warehouse, run_id: str) -> dg.AssetCheckResult:
        """No day read by this run lacked most of its stored contacts twice (an outage, or a
        mass deletion at the source): such a day is left unverified and read again next run."""
        suspect = quality.run_counts(warehouse, run_id)["suspect_days"]
        return dg.AssetCheckResult(
            passed=suspect == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"suspect_days": suspect},
        )

    def verified_within_budget(warehouse: Warehouse, _run_id: str) -> dg.AssetCheckResult:
        """Every day since the start date was read completely within the freshness budget plus
        one day (ETL_CONTACTS_REVERIFY_DAYS): no row is further behind the source than that."""
        found = account_staleness(warehouse, account, settings.freshness, settings.timezone)
        limit = timedelta(days=settings.reverify_days + 1)
        behind = (
            None
            if found.oldest is None
            else round((datetime.now(UTC) - found.oldest) / timedelta(days=1), 2)
        )
        return dg.AssetCheckResult(
            passed=not found.older_than(limit, datetime.now(UTC)),
            metadata={
                "days": found.days,
                "never_verified": len(found.unverified),
                "oldest_verification": _moment(found.oldest),
                "days_behind_at_most": dg.MetadataValue.null()
                if behind is None
                else dg.MetadataValue.float(behind),
                "budget_days": settings.reverify_days,
            },
        )

    def freshness(warehouse: Warehouse, _run_id: str) -> dg.AssetCheckResult:
        """A sync of this account succeeded within the last 36 hours."""
        last = quality.last_success(warehouse, account)
        fresh = last is not None and datetime.now(UTC) - last < FRESH_WITHIN
        return dg.AssetCheckResult(
            passed=fresh,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"last_success": _moment(last)},
        )

    checks: dict[str, tuple[Check, bool]] = {
        "children_have_contacts": (children_have_contacts, True),
        "window_reconciliation": (window_reconciliation, True),
        "reject_rate": (reject_rate, False),
        "deletion_guard": (deletion_guard, False),
        "no_suspect_days": (no_suspect_days, False),
        "freshness": (freshness, False),
        "verified_within_budget": (verified_within_budget, False),
    }
    day_checks = _day_checks(account, settings, partitions_def)

    @dg.multi_asset_check(
        name=f"check_contacts_{account}",
        specs=[*_specs(contacts, checks, None), *_specs(contacts, day_checks, partitions_def)],
    )
    def check_contacts(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> Iterator[dg.AssetCheckResult | dg.AssetCheckEvaluation | dg.Output[None]]:
        store = warehouse.warehouse()
        run_id = context.run.run_id
        yield from _per_run(contacts, checks, store, run_id)
        read = quality.days_read(store, account, run_id)
        days = _days_of(context, read, partitions_def)
        targets = cache(partial(_materialization, context, contacts))
        for name, (day_check, blocking) in day_checks.items():
            results = day_check(store, read, days)
            yield from _per_day(
                context, dg.AssetCheckKey(contacts, name), blocking, results, targets
            )

    return [check_contacts]


def _day_checks(
    account: str, settings: Settings, partitions_def: dg.TimeWindowPartitionsDefinition
) -> dict[str, tuple[DayCheck, bool]]:
    """The checks about a day's rows, each with whether it blocks."""

    def no_future_timestamps(
        warehouse: Warehouse, _read: Mapping[date, quality.DayRead], days: Sequence[date]
    ) -> dict[date, dg.AssetCheckResult]:
        """No contact created that day has a created/updated/last-seen time more than a day
        ahead of now. Every day that has one fails, read by this run or not; contacts created
        outside the partitions (before the start date) count on the nearest day."""
        found = dict.fromkeys(days, 0)
        for day, count in quality.future_timestamps(warehouse, account, settings.timezone).items():
            nearest = _nearest(day, partitions_def)
            found[nearest] = found.get(nearest, 0) + count
        return {
            day: dg.AssetCheckResult(passed=count == 0, metadata={"future_rows": count})
            for day, count in found.items()
        }

    def day_reconciliation(
        _warehouse: Warehouse, read: Mapping[date, quality.DayRead], days: Sequence[date]
    ) -> dict[date, dg.AssetCheckResult]:
        """Every contact that day's complete read returned is stored, live, when the run ends:
        the day is whole in the table."""
        found = _found_on(read, days)
        return {
            day: dg.AssetCheckResult(
                passed=it.unaccounted == 0,
                metadata={
                    "read_completely": day in read,
                    "received": it.received,
                    "not_stored": it.unaccounted,
                },
            )
            for day, it in found.items()
        }

    def holes_repaired(
        _warehouse: Warehouse, read: Mapping[date, quality.DayRead], days: Sequence[date]
    ) -> dict[date, dg.AssetCheckResult]:
        """No contact was missing from that day's complete read yet still at the source when
        asked for by itself. The run loaded each such hole, but a hole means that reading
        windows lost records: the extraction needs a look."""
        found = _found_on(read, days)
        return {
            day: dg.AssetCheckResult(
                passed=it.holes_repaired == 0,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"holes_repaired": it.holes_repaired, "read_completely": day in read},
            )
            for day, it in found.items()
        }

    return {
        "no_future_timestamps": (no_future_timestamps, True),
        "day_reconciliation": (day_reconciliation, True),
        "holes_repaired": (holes_repaired, False),
    }


def _moment(value: datetime | None) -> dg.MetadataValue:
    """A time the UI shows as one (sortable, in the viewer's zone), or null: never "None"."""
    return dg.MetadataValue.null() if value is None else dg.MetadataValue.timestamp(value)


def _specs(
    contacts: dg.AssetKey,
    checks: dict[str, tuple[Check, bool]] | dict[str, tuple[DayCheck, bool]],
    partitions_def: dg.TimeWindowPartitionsDefinition | None,
) -> list[dg.AssetCheckSpec]:
    """The checks' specs: described by their docstrings, per day with `partitions_def`.

    Checks per partition are a preview in Dagster 1.13 (pinned in the lock file, and walked
    through by `make ui-check`): its warning would open every command's output, the demo's
    first screen included, and tells an operator nothing they can act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(
                name,
                asset=contacts,
                blocking=blocking,
                description=check.__doc__,
                partitions_def=partitions_def,
            )
            for name, (check, blocking) in checks.items()
        ]


def _nearest(day: date, partitions_def: dg.TimeWindowPartitionsDefinition) -> date:
    """The partition day nearest to `day`: itself, or the first or last partition's."""
    first = partitions_def.get_first_partition_key()
    last = partitions_def.get_last_partition_key()
    if first is not None and day < date.fromisoformat(first):
        return date.fromisoformat(first)
    if last is not None and day > date.fromisoformat(last):
        return date.fromisoformat(last)
    return day


def _found_on(
    read: Mapping[date, quality.DayRead], days: Sequence[date]
) -> dict[date, quality.DayRead]:
    """What the run's read found on each of `days` (nothing on a day it did not read)."""
    return {day: read.get(day, quality.NOT_READ) for day in days}


def _days_of(
    context: dg.AssetCheckExecutionContext,
    read: Mapping[date, quality.DayRead],
    partitions_def: dg.TimeWindowPartitionsDefinition,
) -> list[date]:
    """The run's days: its partitions, and the older days a nightly run read again."""
    days = {date.fromisoformat(key) for key in context.partition_keys}
    days.update(day for day in read if partitions_def.has_partition_key(day.isoformat()))
    return sorted(days)


def _per_run(
    contacts: dg.AssetKey, checks: dict[str, tuple[Check, bool]], store: Warehouse, run_id: str
) -> Iterator[dg.AssetCheckResult]:
    """Each check's one result, named: the step evaluates several checks."""
    for name, (check, _) in checks.items():
        result = check(store, run_id)
        yield dg.AssetCheckResult(
            asset_key=contacts,
            check_name=name,
            passed=result.passed,
            severity=result.severity,
            metadata=result.metadata,
        )


def _per_day(
    context: dg.AssetCheckExecutionContext,
    key: dg.AssetCheckKey,
    blocking: bool,
    results: dict[date, dg.AssetCheckResult],
    targets: Callable[[date], AssetCheckEvaluationTargetMaterializationData | None],
) -> Iterator[dg.AssetCheckEvaluation | dg.Output[None]]:
    """A check's result for each day, each on its partition and about the day's latest
    materialization; then the check's output, which a step that reports evaluations itself
    must still give."""
    for day, result in results.items():
        yield dg.AssetCheckEvaluation(
            asset_key=key.asset_key,
            check_name=key.name,
            passed=result.passed,
            severity=result.severity,
            metadata=result.metadata,
            blocking=blocking,
            partition=day.isoformat(),
            target_materialization_data=targets(day),
        )
    output = context.op_execution_context.assets_def.get_output_name_for_asset_check_key(key)
    yield dg.Output(None, output_name=output)


def _materialization(
    context: dg.AssetCheckExecutionContext, asset: dg.AssetKey, day: date
) -> AssetCheckEvaluationTargetMaterializationData | None:
    """The day's latest materialization, which its result is about (as Dagster links an
    `AssetCheckResult` of a one-partition run)."""
    found = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[day.isoformat()]), limit=1
    ).records
    if not found:
        return None
    record = found[0]
    return AssetCheckEvaluationTargetMaterializationData(
        run_id=record.event_log_entry.run_id,
        storage_id=record.storage_id,
        timestamp=record.timestamp,
    )
