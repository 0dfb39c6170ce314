"""Build the nightly HTML report from the published marts (and the warehouse's actuals and
quarantine), write it under <home>/reports/, and hand it to MLflow.

IO only: the page is rendered by `nightshift.report_html.render_report`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift.catalog import open_marts, published_tables
from nightshift.report_html import ReportData, render_report
from nightshift.settings import Settings
from nightshift.warehouse import connect, query_frame, query_sql

TOP_SKUS = 4


def report_path(settings: Settings, as_of: date) -> Path:
    return settings.home / "reports" / f"report-{as_of.isoformat()}.html"


def latest_as_of(con: duckdb.DuckDBPyConnection) -> date:
    return query_sql(con, "report/latest_as_of.sql")[0][0]


def read_report_data(settings: Settings, as_of: date | None = None) -> ReportData:
    """Every section's frame for the night `as_of` (default: the newest published); a table
    that night did not publish leaves its section empty."""
    con = open_marts(settings.marts_path)
    try:
        day = as_of or latest_as_of(con)
        views = {t.name for t in published_tables(con, counts=False) if t.kind == "view"}
        run = query_sql(con, "report/night_run.sql", {"as_of": day})
        data = ReportData(
            as_of=day,
            run_id=run[0][0] if run else None,
            defaults_used=list(run[0][1] or []) if run else [],
        )

        def read(view: str, sql_file: str, **params: object) -> pl.DataFrame | None:
            if f"{view}_history" not in views:
                return None
            return query_frame(con, f"report/{sql_file}", {"as_of": day, **params})

        data.kpis = read("kpi_daily", "kpis.sql")
        data.forecasts = read("demand_forecast", "top_forecasts.sql", top=TOP_SKUS)
        data.inventory_risk = read("inventory_plan", "inventory_risk.sql")
        data.segments = read("customer_segments", "segments.sql")
        data.segment_profiles = read("segment_profiles", "segment_profiles.sql")
        data.prices = read("price_recommendations", "prices.sql")
        data.quality = read("model_quality", "quality.sql")
    finally:
        con.close()
    read_warehouse_parts(settings, data)
    return data


def read_warehouse_parts(settings: Settings, data: ReportData) -> None:
    """Actual demand for the forecast SKUs and the quarantine summary. The warehouse may be
    locked by a running night: then the report says so rather than waiting."""
    try:
        con = connect(settings.warehouse_path, settings, read_only=True)
    except duckdb.Error as exc:
        data.notes.append(f"warehouse not readable now ({exc}); actuals and quarantine omitted")
        return
    try:
        data.quarantine = query_frame(con, "report/quarantine.sql")
        if data.forecasts is not None and not data.forecasts.is_empty():
            data.actuals = query_frame(
                con,
                "report/actuals.sql",
                {"skus": data.forecasts["sku"].unique().to_list(), "as_of": data.as_of},
            )
    finally:
        con.close()


def write_report(settings: Settings, as_of: date | None = None, out: Path | None = None) -> Path:
    data = read_report_data(settings, as_of)
    path = out or report_path(settings, data.as_of)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render_report(data), encoding="utf-8")
    tmp.replace(path)
    return path


@task(name="html-report", cache_policy=NO_CACHE)
def publish_html_report(settings: Settings, as_of: date, mlflow_run_id: str | None) -> str:
    """Write tonight's report and log it to the night's MLflow run; returns its path."""
    path = write_report(settings, as_of)
    if mlflow_run_id:
        from tasks.tracking import tracking_client

        tracking_client(settings).log_artifact(mlflow_run_id, str(path), "report")
    return str(path.resolve())
