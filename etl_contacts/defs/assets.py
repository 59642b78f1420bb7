"""The contacts multi-asset: one run loads a whole partition range (a backfill is one run)."""

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, timedelta

import dagster as dg

from etl_contacts.defs.resources import ExpressChatResource, WarehouseResource
from etl_contacts.defs.schedules import ALLOW_MASS_DELETE_TAG, NIGHTLY_TAG
from etl_contacts.pipeline.deletions import DEFAULT_POLICY, DeletePolicy
from etl_contacts.pipeline.nightly import plan_nightly
from etl_contacts.pipeline.sync import day_windows, run_sync
from etl_contacts.settings import (
    DEFAULT_ACCOUNT,
    DEFAULT_MAX_DAYS_PER_RUN,
    DEFAULT_SCHEMA,
    Freshness,
)
from etl_contacts.warehouse.tables import CONTACT_TABLES, metadata

GROUP = "express_chat"
# a nightly missed by a few hours warns, a whole night missed fails: the UI's freshness state and
# the `freshness` check say the same
FRESH_WITHIN = timedelta(hours=36)
LATE_AFTER = timedelta(hours=26)
# who the catalog names for questions about these tables, and how to find them in it
OWNERS = ["team:data-engineering"]


def catalog_tags(account: str, layer: str) -> dict[str, str]:
    """Tags to filter the catalog by: where the data comes from, which account, which layer."""
    return {"source": "express_chat", "account": account, "layer": layer}


_ONE_DAY = timedelta(days=1)
# what the run deleted and found missing, the deletions the guard held, the days that looked
# like an outage
ABSENCE_COUNTERS = ("deleted", "missing", "deletions_held", "suspect_days")


def column_schema(table: str) -> dg.TableSchema:
    """The table's columns with their SQL comments, for the UI's schema view."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(column.name, str(column.type), description=column.comment)
            for column in metadata.tables[f"{DEFAULT_SCHEMA}.{table}"].columns
        ]
    )


def build_contact_assets(
    partitions_def: dg.TimeWindowPartitionsDefinition,
    *,
    account: str = DEFAULT_ACCOUNT,
    api_resource_key: str = "express_chat",
    key_prefix: Sequence[str] = (),
    timezone: str = "UTC",
    max_days_per_run: int = DEFAULT_MAX_DAYS_PER_RUN,
    freshness: Freshness,
    policy: DeletePolicy = DEFAULT_POLICY,
) -> dg.AssetsDefinition:
    """The four contact tables of one account, written together by one sync.

    With several accounts, each has its own asset keys (prefixed by its name), API resource and
    pool, so their partitions, runs and run limits are independent.
    """

    @dg.multi_asset(
        name=f"load_contacts_{account}",  # not the job's name: Dagster refuses the clash
        specs=[
            dg.AssetSpec(
                [*key_prefix, name],
                description=metadata.tables[f"{DEFAULT_SCHEMA}.{name}"].comment,
                group_name=GROUP,
                kinds={"postgres"},
                owners=OWNERS,
                tags=catalog_tags(account, "raw"),
                freshness_policy=dg.FreshnessPolicy.time_window(
                    fail_window=FRESH_WITHIN, warn_window=LATE_AFTER
                ),
            )
            for name in CONTACT_TABLES
        ],
        partitions_def=partitions_def,
        # a backfill is one run per `max_days_per_run` days, not one run per day
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=max_days_per_run),
        pool=f"express_chat_{account}",
        required_resource_keys={api_resource_key, "warehouse"},
    )
    def sync_contacts(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult]:
        """Pull contacts created or seen in the partition days and upsert them into Postgres."""
        express_chat: ExpressChatResource = getattr(context.resources, api_resource_key)
        warehouse: WarehouseResource = context.resources.warehouse
        window = context.partition_time_window
        first = window.start.date()
        last = (window.end - _ONE_DAY).date()
        wh = warehouse.warehouse()
        wh.migrate()
        windows = day_windows(first, last, timezone)
        nightly: dict[str, dg.RawMetadataValue] = {}
        prestart: tuple[date, ...] = ()
        if context.run.tags.get(NIGHTLY_TAG) == "true":
            plan = plan_nightly(
                first,
                last,
                verified=wh.verified_days(account),
                freshness=freshness,
                before=wh.days_before(account, freshness.history_start, timezone),
            )
            prestart = plan.prestart
            windows = day_windows(
                first, last, timezone, reverify=plan.reverify, active_from=plan.lookback_from
            )
            nightly = {
                "reverified_days": len(plan.reverify) + len(plan.prestart),
                "reverified": ", ".join(day.isoformat() for day in (*plan.prestart, *plan.reverify))
                or "none",
                "lookback_from": plan.lookback_from.isoformat(),
            }
            context.log.info(
                f"nightly: re-verifying {len(plan.reverify)} days and probing the stored "
                f"contacts of {len(plan.prestart)} days before the start date, re-reading "
                f"activity since {plan.lookback_from}"
            )
        allowed = context.run.tags.get(ALLOW_MASS_DELETE_TAG) == "true"
        result = run_sync(
            client=express_chat.client_config(),
            warehouse=wh,
            windows=windows,
            account=account,
            run_id=context.run.run_id,
            pii_key=warehouse.pii_key_bytes(),
            timezone=timezone,
            prestart=prestart,
            policy=replace(policy, allow_mass_delete=allowed),
            log=context.log,
        )
        rows = wh.row_counts(account)
        run_metadata = {
            **{k: dg.MetadataValue.int(int(v)) for k, v in result.loaded.items()},
            "windows": result.windows,
            "requests": int(result.extracted.get("requests", 0)),
            "retries": int(result.extracted.get("retries", 0)),
            "pages": int(result.extracted.get("pages", 0)),
            "records": int(result.extracted.get("records", 0)),
            **{k: int(result.extracted.get(k, 0)) for k in ABSENCE_COUNTERS},
            "seconds": dg.MetadataValue.float(round(result.seconds, 3)),
            **{f"server/{k}": dg.MetadataValue.text(v) for k, v in result.server.items()},
            **nightly,
        }
        for table in CONTACT_TABLES:
            yield dg.MaterializeResult(
                asset_key=[*key_prefix, table],
                metadata={
                    "dagster/row_count": rows[table],
                    "dagster/table_name": f"{warehouse.schema_name}.{table}",
                    "dagster/column_schema": column_schema(table),
                    **run_metadata,
                },
            )

    return sync_contacts
