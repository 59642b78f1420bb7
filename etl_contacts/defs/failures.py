"""The cause of a failed Dagster run in one line, for a terminal, a table row or an alert."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg


def failure_cause(step_failures: Iterable[dg.DagsterEvent]) -> str | None:
    """The innermost error of the first failed step: the user's cause, not Dagster's wrapper,
    and without the exception's module path."""
    for event in step_failures:
        error = event.step_failure_data.error
        while error is not None and error.cause is not None:
            error = error.cause
        if error is not None:
            text = error.message.strip().splitlines()[0]
            qualified, _, message = text.partition(": ")
            return message if error.cls_name and qualified.endswith(error.cls_name) else text
    return None
