"""Ad-hoc flows for people in the Prefect UI: retrain one model, backfill a range of nights.

Both are the nightly flow underneath (as subflows), so they ingest whatever has landed,
publish atomically and take turns with the schedule through the home's run lock.
"""

from __future__ import annotations

from datetime import date, timedelta

from prefect import flow, get_run_logger
from prefect.states import State

from flows.nightly import ModelName, degraded_if_any_failed, nightly
from nightshift.errors import ConfigError
from nightshift.settings import load_settings


@flow(name="retrain", description="Retrain and republish one model for a night.")
def retrain(model: ModelName, as_of: date | None = None) -> dict[str, object] | State:
    """Run one model branch (after ingest, features and KPIs) and publish its tables: the
    night's summary, Degraded (as the nightly flow's) if the branch failed.

    Args:
        model: the model branch to retrain.
        as_of: the business date (default: yesterday in the shop's timezone).
    """
    night = nightly(as_of=as_of, models=[model])
    return degraded_if_any_failed(night, [night])


def backfill_days(start: date, end: date, today: date) -> list[date]:
    """Every day from start to end inclusive, oldest first; refuses an empty or future range."""
    if end < start:
        raise ConfigError(f"backfill end {end} is before its start {start}")
    if end > today:
        raise ConfigError(f"backfill end {end} is in the future (today is {today})")
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


@flow(name="backfill", description="Run the nightly flow for each day of a range, in order.")
def backfill(
    start: date, end: date, models: list[ModelName] | None = None
) -> list[dict[str, object]] | State:
    """Run the night for every day from `start` to `end`, one after another, oldest first:
    their summaries, Degraded (naming the nights) if a branch failed on any of them.

    Idempotent: a night run again republishes the same rows for its as_of (its history
    partition is replaced, not duplicated). The marts end holding `end`'s night.

    Args:
        start: first business date.
        end: last business date (inclusive).
        models: model branches to run each night (default all).
    """
    settings = load_settings()
    days = backfill_days(start, end, settings.today())
    logger = get_run_logger()
    results = []
    for n, day in enumerate(days, start=1):
        logger.info("backfill night %d of %d: %s", n, len(days), day)
        results.append(nightly(as_of=day, models=models))
    return degraded_if_any_failed(results, results)
