"""The data-freshness task: the night stops after ingest, before any feature or model work,
when it has no recent orders (the rule: nightshift/freshness.py)."""

from __future__ import annotations

from datetime import date

from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift.freshness import StaleDataError, freshness_problem
from nightshift.runlog import task_logger
from nightshift.settings import Settings
from nightshift.warehouse import open_warehouse, query_sql


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
