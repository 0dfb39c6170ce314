"""The run's Prefect artifacts: a markdown summary and the recent KPI table."""

from __future__ import annotations

from datetime import date

from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift.settings import Settings
from nightshift.warehouse import open_warehouse, query_sql
from tasks.branch import BranchResult
from tasks.ingest import IngestSummary


def mlflow_run_link(tracking_uri: str, experiment_id: str | None, run_id: str | None) -> str:
    """A markdown link to the run in the MLflow UI when the store is a server; the run id
    (and how to open it) for a local store, which has no address to link to."""
    if not run_id:
        return "-"
    if tracking_uri.startswith(("http://", "https://")) and experiment_id:
        base = tracking_uri.rstrip("/")
        return f"[{run_id[:8]}]({base}/#/experiments/{experiment_id}/runs/{run_id})"
    return f"`{run_id}`"


def summary_markdown(
    run_id: str,
    as_of: date,
    ingest: IngestSummary,
    branches: list[BranchResult],
    published: list[str],
    mlflow_run_id: str | None,
    failures: dict[str, str] | None = None,
    tracking_uri: str = "",
    experiment_id: str | None = None,
) -> str:
    """The night in a few tables: rows in, quarantined by reason, branches against their
    baselines with their gates and MLflow runs, degraded branches, what published."""

    def link(mlflow_id: str | None) -> str:
        return mlflow_run_link(tracking_uri, experiment_id, mlflow_id)

    archived_only = (
        f", {len(ingest.files_only_archived)} only in the raw archive (gone from landing/, "
        "their rows kept)"
        if ingest.files_only_archived
        else ""
    )
    lines = [
        f"# nightshift run `{run_id}` for {as_of.isoformat()}",
        "",
        f"Files loaded: {len(ingest.files_loaded)} new or changed, {ingest.files_unchanged} "
        f"unchanged{archived_only}; staging judged: {ingest.staging_judged}.",
        "",
        "| table | rows in | staged | quarantined | duplicate | new this run |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for table, audit in sorted(ingest.audit.items()):
        lines.append(
            f"| {table} | {audit['rows_in']:,} | {audit['rows_staged']:,} | "
            f"{audit['rows_quarantined']:,} | {audit['rows_duplicate']:,} | {audit['rows_new']:,} |"
        )
    reasons = [
        f"| {table} | {reason} | {count:,} |"
        for table, by_reason in sorted(ingest.quarantined_by_reason.items())
        for reason, count in by_reason.items()
    ]
    if reasons:
        lines += ["", "| table | quarantine reason | rows |", "|---|---|---:|", *reasons]
    if branches:
        lines += [
            "",
            "| branch | published model | promoted | gate | metrics | baseline | MLflow run |",
            "|---|---|---|---|---|---|---|",
        ]
        for result in branches:
            lines.append(
                f"| {result.name} | {result.model} | {result.promoted} | {result.gate} | "
                f"{shown_metrics(result.metrics)} | {shown_metrics(result.baseline_metrics)} | "
                f"{link(result.mlflow_run_id)} |"
            )
    if failures:
        lines += [
            "",
            "**Degraded**: these branches failed; their tables keep last night's rows, flagged "
            "`stale` in `model`:",
            *[f"- {name}: {error}" for name, error in sorted(failures.items())],
        ]
    if ingest.files_not_read:
        lines += [
            "",
            "**Not read**: these are in landing/ but in no table:",
            *[f"- `landing/{path}`: {why}" for path, why in ingest.files_not_read.items()],
        ]
    if ingest.defaults_used:
        lines += ["", "Defaults used:", *[f"- {item}" for item in ingest.defaults_used]]
    lines += ["", f"Published: {', '.join(published)}"]
    if mlflow_run_id:
        lines.append(f"MLflow parent run: {link(mlflow_run_id)}")
        if not tracking_uri.startswith(("http://", "https://")):
            lines.append(
                f"(open the local store with `mlflow ui --backend-store-uri {tracking_uri}`)"
            )
    return "\n".join(lines)


def shown_metrics(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())) or "-"


@task(name="report", cache_policy=NO_CACHE)
def write_run_artifacts(
    settings: Settings,
    run_id: str,
    as_of: date,
    ingest: IngestSummary,
    branches: list[BranchResult],
    published: list[str],
    mlflow_run_id: str | None,
    failures: dict[str, str] | None = None,
    report: str | None = None,
) -> None:
    """Attach the run summary and the last 28 days of KPIs to the Prefect flow run."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    experiment_id = None
    if mlflow_run_id:
        from tasks.tracking import tracking_client

        experiment_id = tracking_client(settings).get_run(mlflow_run_id).info.experiment_id
    markdown = summary_markdown(
        run_id, as_of, ingest, branches, published, mlflow_run_id, failures,
        settings.tracking_uri, experiment_id,
    )  # fmt: skip
    if report:
        markdown += (
            f"\n\nHTML report: [{report}](file://{report}) (also in the MLflow run's report/)"
        )
    create_markdown_artifact(markdown, key="nightly-summary", description=f"as_of {as_of}")
    if mlflow_run_id and settings.tracking_uri.startswith(("http://", "https://")):
        from prefect.artifacts import create_link_artifact

        create_link_artifact(
            f"{settings.tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{mlflow_run_id}",
            link_text=f"MLflow run for {as_of}",
            key="mlflow-run",
        )
    with open_warehouse(settings, read_only=True) as con:
        rows = query_sql(con, "marts/kpi_recent.sql", {"as_of": as_of})
    columns = ["date", "orders", "units", "gmv", "aov", "customers", "conversion_rate"]
    table = [
        {k: (str(v) if v is not None else None) for k, v in zip(columns, row, strict=True)}
        for row in rows
    ]
    create_table_artifact(table, key="kpi-daily", description="KPIs, last 28 days")
