"""Is there data for the night? Checked after ingest and before any feature or model work.

A night far after its newest order is either a feed that stopped landing files or a
historical data set run without `--as-of` (Online Retail ends 2011-12-09; yesterday is
years later). Either way the models would train on a calendar of empty days and publish
confident nonsense, so the run stops with an error that says which date to run, and
yesterday's marts stay as they were.
"""

from __future__ import annotations

from datetime import date

from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift.errors import NightshiftError
from nightshift.runlog import task_logger
from nightshift.settings import Settings
from nightshift.warehouse import open_warehouse, query_sql


class StaleDataError(NightshiftError):
    """The night has no recent orders to model."""


def freshness_problem(
    as_of: date, first: date | None, newest: date | None, max_age_days: int
) -> str | None:
    """Why a night on `as_of` has nothing to model, or None. `first` and `newest` are the
    business dates of the first and newest staged order on or before as_of."""
    if newest is None or first is None:
        return (
            f"no staged order on or before as_of {as_of}: the tables would be empty; land "
            "orders, or run a night the data covers with --as-of"
        )
    age = (as_of - newest).days
    if max_age_days and age > max_age_days:
        return (
            f"the newest order on or before as_of {as_of} is from {newest}, {age} days earlier "
            f"(NIGHTSHIFT_MAX_DATA_AGE_DAYS = {max_age_days}): the orders feed has stopped, or "
            f"the data is historical; land newer files, or run --as-of {newest}"
        )
    return None


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
