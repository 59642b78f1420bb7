"""Analyst-facing assets downstream of the sync, in the same asset graph."""

from collections.abc import Sequence

import dagster as dg
import sqlalchemy as sa

from etl_contacts.defs.assets import GROUP, OWNERS, catalog_tags
from etl_contacts.defs.resources import WarehouseResource

PREVIEW_DAYS = 14


def build_daily_activity(
    contacts: dg.AssetKey, *, account: str, key_prefix: Sequence[str] = ()
) -> dg.AssetsDefinition:
    @dg.asset(
        key=[*key_prefix, "contact_daily_activity"],
        deps=[contacts],
        group_name=GROUP,
        kinds={"postgres"},
        owners=OWNERS,
        tags=catalog_tags(account, "analytics"),
        automation_condition=dg.AutomationCondition.eager(),
    )
    def contact_daily_activity(warehouse: WarehouseResource) -> dg.MaterializeResult:
        """Per day (the account's time zone) and channel: contacts created and contacts last
        active. A view, so always current; materialized after every sync so that the catalog
        shows its row count and the last two weeks."""
        wh = warehouse.warehouse()
        view = sa.table(
            "contact_daily_activity",
            sa.column("account"),
            sa.column("day"),
            sa.column("channel"),
            sa.column("new_contacts"),
            sa.column("active_contacts"),
            schema="express_chat",
        )
        query = (
            sa.select(view.c.day, view.c.channel, view.c.new_contacts, view.c.active_contacts)
            .where(view.c.account == account)
            .order_by(view.c.day.desc(), view.c.channel)
        )
        with wh.engine.connect() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(query.subquery())
            ).scalar_one()
            recent = conn.execute(query.limit(PREVIEW_DAYS * 4)).all()
        lines = ["| day | channel | new | active |", "| --- | --- | ---: | ---: |"]
        lines += [f"| {d} | {c} | {n} | {a} |" for d, c, n, a in recent]
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": int(total),
                "dagster/table_name": f"{warehouse.schema_name}.contact_daily_activity",
                "recent": dg.MetadataValue.md("\n".join(lines)),
            }
        )

    return contact_daily_activity
