"""marts.model_quality: what each branch achieved tonight against its baseline, and whether
it passed its gate; a failed branch gets a row that says so."""

from __future__ import annotations

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift.settings import Settings
from nightshift.warehouse import open_warehouse, registered_frames, run_sql
from tasks.branch import BranchResult
from tasks.retry import IO_RETRY
from tasks.runs import RunContext

MART = "model_quality"


def quality_rows(branches: list[BranchResult], failures: dict[str, str]) -> pl.DataFrame:
    """One row per branch metric (baseline value where the baseline has the same metric);
    one `failed` row per failed branch."""
    rows = [
        {
            "branch": result.name,
            "model": result.model,
            "metric": metric,
            "value": value,
            "baseline_value": result.baseline_metrics.get(metric),
            "passed": result.promoted,
            "gate": result.gate,
            "mlflow_run_id": result.mlflow_run_id,
        }
        for result in branches
        for metric, value in sorted(result.metrics.items())
    ]
    rows += [
        {
            "branch": name,
            "model": "failed",
            "metric": "failed",
            "value": None,
            "baseline_value": None,
            "passed": False,
            "gate": error,
            "mlflow_run_id": None,
        }  # fmt: skip
        for name, error in sorted(failures.items())
    ]
    schema = {
        "branch": pl.String, "model": pl.String, "metric": pl.String, "value": pl.Float64,
        "baseline_value": pl.Float64, "passed": pl.Boolean, "gate": pl.String,
        "mlflow_run_id": pl.String,
    }  # fmt: skip
    return pl.DataFrame(rows, schema=schema)


@task(name="model-quality", cache_policy=NO_CACHE, **IO_RETRY)
def build_model_quality(
    settings: Settings, run: RunContext, branches: list[BranchResult], failures: dict[str, str]
) -> list[str]:
    """Build marts.model_quality for the night; returns the mart to publish (none when no
    branch ran)."""
    if not branches and not failures:
        return []
    frame = quality_rows(branches, failures)
    with open_warehouse(settings) as con, registered_frames(con, {"model_quality_rows": frame}):
        run_sql(con, "marts/model_quality.sql", {"run_id": run.run_id, "as_of": run.as_of})
    return [MART]
