"""Is there data for the night? The rule, shared by the nightly flow (tasks/freshness.py)
and `nightshift doctor`.

A night far after its newest order is either a feed that stopped landing files or a
historical data set run without `--as-of` (Online Retail ends 2011-12-09; yesterday is
years later). Either way the models would train on a calendar of empty days and publish
confident nonsense, so the run stops with an error that says which date to run, and
yesterday's marts stay as they were.
"""

from __future__ import annotations

from datetime import date

from nightshift.errors import NightshiftError


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
