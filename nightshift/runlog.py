"""The logger for code that runs both inside Prefect (flows, tasks) and from the CLI."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime


def task_logger(name: str) -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger inside a flow or task run, the module's logger elsewhere."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(name)


def metrics_line(metrics: dict[str, float]) -> str:
    """A training epoch's metrics for the run log, e.g. `val_pinball=0.0688`: four decimals
    say whether training still improves, seventeen digits only make the line unreadable."""
    return ", ".join(f"{name}={value:.4f}" for name, value in metrics.items())


# The rich console `nightshift run` draws bars on while its flow runs in this process; None
# when the run is not attached to a terminal (a served deployment, a worker, CI).
_terminal: dict[str, object] = {"console": None, "bar": None}
# Prefect console log handlers printing through the terminal console, with their own consoles.
_borrowed: list[tuple[logging.Handler, object]] = []


def show_progress_on(console: object | None) -> None:
    """Draw progress bars on `console` (a rich Console) for work inside flow and task runs
    too, beside the Prefect progress artifacts; None stops drawing them. Used by
    `nightshift run` on a terminal, where the flow runs in the CLI's own process."""
    _stop_bar()
    for handler, own in _borrowed:
        handler.console = own
    _borrowed.clear()
    _terminal["console"] = console


def _print_prefect_logs_through(console: object) -> None:
    """Make Prefect's console log handler print through `console`, so that log lines appear
    above a live bar instead of through it. Prefect configures logging when a run starts,
    hence here and not in show_progress_on."""
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger(), *logging.root.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler) and handler.console is not console:
                _borrowed.append((handler, handler.console))
                handler.console = console


def _stop_bar() -> None:
    """Close the bar still drawn, e.g. by a task that failed before it finished: rich allows
    one live display at a time."""
    bar = _terminal["bar"]
    if bar is not None:
        bar.stop()
        _terminal["bar"] = None


def _rich_bar(description: str, total: int, console: object | None) -> Callable[[int], None]:
    from rich.console import Console
    from rich.progress import Progress

    _stop_bar()
    bar = Progress(console=console or Console(stderr=True), transient=False)
    task_id = bar.add_task(description, total=max(total, 1))
    bar.start()
    _terminal["bar"] = bar

    def advance(done: int) -> None:
        bar.update(task_id, completed=done)
        if done >= total and _terminal["bar"] is bar:
            _stop_bar()

    return advance


# Flow runs whose night has ended (failed, or stopped by a signal) while tasks on its thread
# pool may still be working: their next progress report stops them (`stop_the_work_of`).
_ended_flow_runs: set[str] = set()


class NightEnded(Exception):
    """Raised in a task's progress report once its night has failed or been stopped."""


def stop_the_work_of(flow_run_id: str | None) -> None:
    """Make every task of this flow run that is still working stop at its next progress
    report (an epoch, a batch of SKUs, a landing file).

    A signal or an error reaches the flow's own thread only. Branches running on the flow's
    thread pool went on training for minutes after the night had been closed as failed (100
    s on `tiny` with five at once), holding the process up and writing models nobody would
    publish; Prefect waits for them before the process can exit."""
    if flow_run_id:
        _ended_flow_runs.add(str(flow_run_id))


def _night_ended(flow_run_id: str) -> bool:
    return flow_run_id in _ended_flow_runs


def raise_if_night_ended(step: str) -> None:
    """Inside a task run whose night has ended, raise `NightEnded` instead of doing `step`.

    For the steps that leave something behind outside the night's own tables, registering a
    model version above all: a branch with no progress reports (segments) finished its work
    after a stop and registered a version of a night that published nothing."""
    from prefect.context import TaskRunContext

    context = TaskRunContext.get()
    if context is not None and _night_ended(str(context.task_run.flow_run_id)):
        raise NightEnded(f"{step}: not done, the night ended")


def progress_reporter(
    description: str, total: int, console: object | None = None
) -> Callable[[int], None]:
    """A callback `report(done)` for long work: a Prefect progress artifact inside a flow or
    task run (the UI shows a bar), plus a rich bar when `nightshift run` is on a terminal;
    outside Prefect, a rich bar on a terminal (or the rich `console` given); a log line per
    step elsewhere. Nothing to do (total 0) reports nothing.

    Inside a task run, a report raises `NightEnded` once the night has ended
    (`stop_the_work_of`), so long work stops at its next step."""
    import sys

    if total <= 0:
        return lambda done: None

    from prefect.artifacts import create_progress_artifact, update_progress_artifact
    from prefect.context import TaskRunContext

    context = TaskRunContext.get()
    if context is not None:
        flow_run_id = str(context.task_run.flow_run_id)
        artifact_id = create_progress_artifact(0.0, description=description)
        terminal = _terminal["console"]
        draw = None
        if terminal is not None:
            _print_prefect_logs_through(terminal)
            draw = _rich_bar(description, total, terminal)

        def report(done: int) -> None:
            if _night_ended(flow_run_id):
                raise NightEnded(f"{description}: stopped at {done} of {total}, the night ended")
            update_progress_artifact(artifact_id, 100.0 * done / max(total, 1))
            if draw is not None:
                draw(done)

        return report
    if console is None and not sys.stderr.isatty():
        logger = logging.getLogger("nightshift.progress")
        return lambda done: logger.info("%s: %d/%d", description, done, total)
    return _rich_bar(description, total, console)


def task_run_spans(flow_run_id: str) -> dict[str, tuple[datetime, datetime]]:
    """(first start, last end) of each task in a flow run, by task name (the run name
    without Prefect's "-<suffix>"; mapped batches share a name, so a parallel stage spans
    its first batch's start to its last one's end). Unfinished task runs are left out."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    with get_client(sync_client=True) as client:
        # Prefect 3.8's sync client sends null for unset fields, which its server rejects.
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
            task_run_filter=None,
            sort=TaskRunSort.EXPECTED_START_TIME_ASC,
            limit=200,
            offset=0,
        )
    spans: dict[str, tuple[datetime, datetime]] = {}
    for run in runs:
        if run.start_time is None or run.end_time is None:
            continue
        name = run.name.rsplit("-", 1)[0]
        first, last = spans.get(name, (run.start_time, run.end_time))
        spans[name] = (min(first, run.start_time), max(last, run.end_time))
    return spans
