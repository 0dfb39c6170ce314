"""Is there data for the night? The rules, shared by the nightly flow (tasks/freshness.py)
and `nightshift doctor`.

A night far after its newest order is either a feed that stopped landing files or a
historical data set run without `--as-of` (Online Retail ends 2011-12-09; yesterday is
years later). Either way the models would train on a calendar of empty days and publish
confident nonsense, so the run stops with an error that says which date to run, and
yesterday's marts stay as they were.

A night whose new files are mostly quarantined is a feed whose format changed (timestamps
in another layout, a renamed event type, decimal commas): its rows are safe in
`quarantine.rows`, but the KPIs and models would be computed as if the day had hardly
sold. The run stops the same way, naming the table, the reasons and the run to look at.
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


class QuarantineShareError(NightshiftError):
    """Most of a table's rows loaded tonight were quarantined."""


# Fewer quarantined rows than this never stop a night: a small correction file that is
# mostly bad is a file to fix, not a feed that changed.
MIN_QUARANTINED_TO_STOP = 100


def quarantine_problem(
    table: str, run_id: str, rows_new: int, by_reason: dict[str, int], max_share: float
) -> str | None:
    """Why the night must stop because of `table`'s rows loaded tonight (`rows_new`, of which
    `by_reason` were quarantined, by reason), or None."""
    quarantined = sum(by_reason.values())
    rows_new = max(rows_new, quarantined)  # they are among them; never divide by zero
    if (
        max_share >= 1
        or quarantined < MIN_QUARANTINED_TO_STOP
        or quarantined <= max_share * rows_new
    ):
        return None
    most = sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))[:3]
    reasons = ", ".join(f"{reason} {count:,}" for reason, count in most)
    return (
        f"{table}: {quarantined:,} of the {rows_new:,} rows loaded tonight "
        f"({quarantined / rows_new:.0%}) were quarantined ({reasons}), more than "
        f"NIGHTSHIFT_MAX_QUARANTINE_SHARE = {max_share}: has the feed's format changed? "
        f"See quarantine.rows where run_id = '{run_id}'; fix the files and land them again"
    )
