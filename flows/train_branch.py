"""One torch branch as its own flow, for GPU workers.

When NIGHTSHIFT_GPU_POOL is set, the nightly flow does not train the recommender and the
demand forecaster in its own process: it starts runs of this flow's deployment
(`train-branch/gpu`, on that pool) and waits for them. The branch code is the same one the
nightly flow runs in-process; only where it runs changes.
"""

from __future__ import annotations

from datetime import date

from prefect import flow

from flows.nightly import MODEL_BRANCHES, TorchBranch
from nightshift.settings import load_settings
from nightshift.stopping import reraise_stop
from tasks.routing import write_branch_result
from tasks.runs import RunContext


@flow(name="train-branch", description="Train and evaluate one torch branch (GPU workers).")
def train_branch(
    branch: TorchBranch,
    as_of: date,
    run_id: str,
    flow_run_id: str | None = None,
    mlflow_parent_run_id: str | None = None,
) -> dict[str, object]:
    """Run `branch` for the nightly run `run_id`, writing its marts to the shared warehouse.

    Args:
        branch: the torch branch to train.
        as_of: the night's business date.
        run_id: the nightly run this belongs to (lineage on every row it writes).
        flow_run_id: the nightly flow run, for lineage.
        mlflow_parent_run_id: the night's MLflow parent run; the branch's run is its child.
    """
    settings = load_settings()
    run = RunContext(run_id, as_of, flow_run_id, mlflow_parent_run_id)
    try:
        result = MODEL_BRANCHES[branch](settings, run)
    except Exception as exc:
        reraise_stop(exc)  # the runner's SIGTERM (a cancel) that landed in a DuckDB query
        raise
    path = write_branch_result(settings, run_id, result)
    return {
        "branch": branch,
        "model": result.model,
        "promoted": result.promoted,
        "result": str(path),
    }
