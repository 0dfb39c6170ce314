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


def progress_reporter(
    description: str, total: int, console: object | None = None
) -> Callable[[int], None]:
    """A callback `report(done)` for long work: a Prefect progress artifact inside a flow or
    task run (the UI shows a bar); on a terminal (or the rich `console` given), a rich
    progress bar that closes when done reaches total; a log line per step elsewhere."""
    import sys

    from prefect.artifacts import create_progress_artifact, update_progress_artifact
    from prefect.context import TaskRunContext

    if TaskRunContext.get() is not None:
        artifact_id = create_progress_artifact(0.0, description=description)

        def report(done: int) -> None:
            update_progress_artifact(artifact_id, 100.0 * done / max(total, 1))

        return report
    if console is None and not sys.stderr.isatty():
        logger = logging.getLogger("nightshift.progress")
        return lambda done: logger.info("%s: %d/%d", description, done, total)
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(console=console or Console(stderr=True), transient=False)
    task_id = bar.add_task(description, total=max(total, 1))
    bar.start()

    def advance(done: int) -> None:
        bar.update(task_id, completed=done)
        if done >= total:
            bar.stop()

    return advance
