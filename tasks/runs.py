"""meta.runs: one row per run, opened when it starts and closed with its outcome."""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift import __version__
from nightshift.runlog import task_logger
from nightshift.settings import Settings
from nightshift.warehouse import open_warehouse, query_sql, run_sql
from tasks.retry import IO_RETRY
from tasks.tracking import end_abandoned_runs


@dataclass(frozen=True)
class RunContext:
    """What every task of a run needs to stamp lineage on what it writes."""

    run_id: str
    as_of: date
    flow_run_id: str | None
    mlflow_run_id: str | None

    def lineage(self, mlflow_run_id: str, **extra: object) -> dict[str, object]:
        """The bind parameters a branch's mart SQL stamps on every row: the night's as_of
        and run_id, the branch's own MLflow child run, and any `extra` (e.g. its model)."""
        return {"as_of": self.as_of, "run_id": self.run_id, "mlflow_run_id": mlflow_run_id, **extra}


def new_run_id(as_of: date | None) -> str:
    """Sortable and unique: the business date, the UTC start time, and a random suffix."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    day = as_of.strftime("%Y%m%d") if as_of else "adhoc"
    return f"{day}-{stamp}-{uuid.uuid4().hex[:6]}"


@cache
def code_version() -> str:
    """The package version and, in a git checkout, the commit it runs (asked of git once)."""
    repo = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+{sha}"


@task(name="open-run", cache_policy=NO_CACHE, **IO_RETRY)
def open_run(
    settings: Settings,
    run_id: str,
    as_of: date | None,
    source: str,
    models: list[str],
    full_refresh: bool,
    flow_run_id: str | None,
) -> None:
    """Insert the run's row with status 'running'."""
    with open_warehouse(settings) as con:
        run_sql(
            con,
            "meta/open_run.sql",
            {
                "run_id": run_id,
                "flow_run_id": flow_run_id,
                "as_of": as_of,
                "source": source,
                "models": models,
                "full_refresh": full_refresh,
                "started_at": datetime.now(UTC),
                "code_version": code_version(),
            },
        )


@task(name="close-run", cache_policy=NO_CACHE, **IO_RETRY)
def close_run(
    settings: Settings,
    run_id: str,
    status: str,
    mlflow_run_id: str | None = None,
    input_digests: dict[str, str] | None = None,
    row_counts: dict[str, object] | None = None,
    defaults_used: list[str] | None = None,
    error: str | None = None,
) -> None:
    """Record the run's outcome; fields left None keep what was recorded before."""
    with open_warehouse(settings) as con:
        run_sql(
            con,
            "meta/close_run.sql",
            {
                "run_id": run_id,
                "status": status,
                "finished_at": datetime.now(UTC),
                "mlflow_run_id": mlflow_run_id,
                "input_digests": json.dumps(input_digests) if input_digests is not None else None,
                "row_counts": json.dumps(row_counts) if row_counts is not None else None,
                "defaults_used": defaults_used,
                "error": error,
            },
        )


@task(name="abandon-dead-runs", cache_policy=NO_CACHE, **IO_RETRY)
def abandon_dead_runs(settings: Settings) -> list[str]:
    """Mark runs left 'running' by a killed process as 'abandoned', close their MLflow runs
    as KILLED and record the night's MLflow run beside it (a run records it only when it
    closes). Call only while holding the home's run lock: then no other run can be alive.
    Returns their run ids."""
    with open_warehouse(settings) as con:
        rows = query_sql(
            con,
            "meta/abandon_runs.sql",
            {
                "finished_at": datetime.now(UTC),
                "reason": "the run's process died (killed or crashed) before it finished; "
                "nothing it computed was published",
            },
        )
        nights = sorted(run_id for run_id, as_of, _ in rows if as_of is not None)  # not ingests
        for run_id, mlflow_run_id in end_abandoned_mlflow_runs(settings, nights).items():
            run_sql(
                con,
                "meta/record_mlflow_run.sql",
                {"run_id": run_id, "mlflow_run_id": mlflow_run_id},
            )
    crash_flow_runs(sorted(flow_run_id for _, _, flow_run_id in rows if flow_run_id))
    return sorted(run_id for run_id, _, _ in rows)


def end_abandoned_mlflow_runs(settings: Settings, nights: list[str]) -> dict[str, str]:
    """`end_abandoned_runs` for these nights, logged instead of raised: {run id: MLflow run}."""
    if not nights:
        return {}
    try:
        return end_abandoned_runs(settings, nights)
    except Exception as exc:  # noqa: BLE001 - bookkeeping: the night must not fail on it
        task_logger(__name__).warning(
            "could not close the MLflow runs of killed nights %s: %s", nights, exc
        )
        return {}


def crash_flow_runs(flow_run_ids: list[str]) -> list[str]:
    """Set the Prefect flow runs of killed nights that still show as running to Crashed;
    returns those changed. Only from inside a flow run, whose API is up: a CLI ingest would
    start Prefect's just for this.

    A killed process cannot report its own end, so its night stayed Running in the Prefect
    UI for good, beside the later nights that ran normally."""
    from prefect.context import FlowRunContext

    if not flow_run_ids or FlowRunContext.get() is None:
        return []
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    died = "its process died (killed or crashed) before it finished"
    crashed = []
    try:
        with get_client(sync_client=True) as client:
            for flow_run_id in flow_run_ids:
                state = client.read_flow_run(flow_run_id).state
                if state is not None and not state.is_final():
                    client.set_flow_run_state(flow_run_id, Crashed(message=died), force=True)
                    crashed.append(flow_run_id)
                # its tasks that were running (a branch, the inventory pool's batches) too
                unfinished = [t.id for t in unfinished_task_runs(client, flow_run_id)]
                crash_task_runs(client, unfinished, died)
    except Exception as exc:  # noqa: BLE001 - bookkeeping: the night must not fail on it
        task_logger(__name__).warning(
            "could not mark killed nights %s crashed: %s", flow_run_ids, exc
        )
    return crashed


def crash_task_runs(client, task_run_ids: list, why: str) -> list:  # noqa: ANN001
    """Set these task runs to Crashed, saying `why`, unless they ended or never started
    (a queued pool batch has an id but no run yet); returns those changed."""
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed

    crashed = []
    for task_run_id in task_run_ids:
        try:
            state = client.read_task_run(task_run_id).state
        except ObjectNotFound:
            continue
        if state is not None and not state.is_final():
            client.set_task_run_state(task_run_id, Crashed(message=why), force=True)
            crashed.append(task_run_id)
    return crashed


def unfinished_task_runs(client, flow_run_id: str) -> list:  # noqa: ANN001 - Prefect's client
    """The task runs of a flow run that are not in a final state, every page of them."""
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId
    from prefect.client.schemas.sorting import TaskRunSort

    runs_filter = TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id]))
    unfinished, offset, page = [], 0, 200
    # a sort must be given: Prefect 3.8's server refuses the client's default (None)
    while batch := client.read_task_runs(
        task_run_filter=runs_filter, sort=TaskRunSort.ID_DESC, limit=page, offset=offset
    ):
        unfinished += [t for t in batch if t.state is not None and not t.state.is_final()]
        offset += page
    return unfinished


def run_status(settings: Settings, run_id: str) -> str | None:
    with open_warehouse(settings) as con:
        rows = query_sql(con, "meta/run_status.sql", {"run_id": run_id})
    return rows[0][0] if rows else None
