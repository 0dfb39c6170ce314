"""The data checks after ingest: the night stops before any feature or model work when it
has no recent orders, or when most of a table's new rows were quarantined (the rules:
nightshift/freshness.py)."""

from __future__ import annotations

from datetime import date

from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift.freshness import (
    QuarantineShareError,
    StaleDataError,
    freshness_problem,
    quarantine_problem,
)
from nightshift.runlog import task_logger
from nightshift.settings import Settings
from nightshift.warehouse import open_warehouse, query_sql
from tasks.ingest import IngestSummary


@task(name="data-freshness", cache_policy=NO_CACHE)
def check_data_freshness(settings: Settings, as_of: date) -> date:
    """Raise StaleDataError when the night has nothing recent to model; else return the
    newest order's date (logged, so a feed that is slipping shows before it stops)."""
    with open_warehouse(settings, read_only=True) as con:
        first, newest = query_sql(con, "staging/orders_span.sql", {"as_of": as_of})[0]
    problem = freshness_problem(as_of, first, newest, settings.max_data_age_days)
    if problem:
        raise StaleDataError(problem)
    task_logger(__name__).info(
        "newest order: %s (%d days before as_of)", newest, (as_of - newest).days
    )
    return newest


@task(name="quarantine-share", cache_policy=NO_CACHE)
def check_quarantine_share(settings: Settings, ingest: IngestSummary) -> None:
    """Raise QuarantineShareError when most of a table's rows loaded tonight were
    quarantined; else log each table's share, so a feed that is going bad shows first."""
    with open_warehouse(settings, read_only=True) as con:
        rows = query_sql(con, "staging/quarantined_tonight.sql", {"run_id": ingest.run_id})
    by_table: dict[str, dict[str, int]] = {}
    for table, reason, count in rows:
        by_table.setdefault(table, {})[reason] = count
    for table, by_reason in by_table.items():
        rows_new = ingest.audit.get(table, {}).get("rows_new", 0)
        problem = quarantine_problem(
            table, ingest.run_id, rows_new, by_reason, settings.max_quarantine_share
        )
        if problem:
            raise QuarantineShareError(problem)
        quarantined = sum(by_reason.values())
        task_logger(__name__).info(
            "%s: %s of %s rows loaded tonight quarantined",
            table,
            f"{quarantined:,}",
            f"{rows_new:,}",
        )
