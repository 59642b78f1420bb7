"""The baseline every popular loader uses: page numbers from 1 until an empty page.

Kept only so tests and benchmarks can show what it loses when the data moves; never used by the
pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator

from etl_contacts.source.http import ApiClient
from etl_contacts.source.models import ClientConfig, Window
from etl_contacts.source.stats import ExtractStats
from etl_contacts.timestamps import format_ms, to_ms


def offset_paging(
    config: ClientConfig, window: Window, stats: ExtractStats | None = None
) -> Iterator[list[object]]:
    api = ApiClient(config, stats or ExtractStats())
    bounds = {"startAt": format_ms(to_ms(window.start)), "endsAt": format_ms(to_ms(window.end))}
    try:
        page = 1
        while items := api.fetch({window.field: bounds}, page).items:
            yield items
            page += 1
    finally:
        api.close()
