"""The logger for code that runs both inside Prefect (flows, tasks) and from the CLI."""

from __future__ import annotations

import logging
from collections.abc import Callable


def task_logger(name: str) -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger inside a flow or task run, the module's logger elsewhere."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(name)


def progress_reporter(description: str, total: int) -> Callable[[int], None]:
    """A callback `report(done)` for long work: a Prefect progress artifact inside a flow or
    task run (the UI shows a bar), a log line per step elsewhere."""
    from prefect.artifacts import create_progress_artifact, update_progress_artifact
    from prefect.context import TaskRunContext

    if TaskRunContext.get() is None:
        logger = logging.getLogger("nightshift.progress")
        return lambda done: logger.info("%s: %d/%d", description, done, total)
    artifact_id = create_progress_artifact(0.0, description=description)

    def report(done: int) -> None:
        update_progress_artifact(artifact_id, 100.0 * done / max(total, 1))

    return report
