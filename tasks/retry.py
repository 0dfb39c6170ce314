"""Retries for the IO tasks (warehouse, publish, MLflow): transient failures only.

A file locked for a moment, a tracking server restarting, a full disk being cleared: worth
two more tries with growing waits. Our own errors (a bad landing file, a bad setting,
another run holding the home) fail the same way every time, so they fail at once with
their message instead of after minutes of retries.
"""

from __future__ import annotations

from typing import Any

from prefect.tasks import exponential_backoff

from nightshift.errors import NightshiftError
from nightshift.stopping import swallowed_stop


def transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's retry_condition_fn: retry unless the task raised one of our own errors,
    except those marked `transient` (a file another program holds for a moment), or was
    stopped by a signal that DuckDB turned into an error (`nightshift.stopping`)."""
    error = state.data
    if swallowed_stop(error):
        return False
    return not isinstance(error, NightshiftError) or getattr(error, "transient", False)


IO_RETRY: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),  # 2 s, then 4 s
    "retry_condition_fn": transient_only,
}
