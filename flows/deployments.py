"""The deployments, built from settings for `nightshift serve` (prefect.yaml declares the same
ones for `prefect deploy` + workers; a test keeps the two in step)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nightshift.settings import Settings

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

TAGS = ["nightshift"]


def build_deployments(settings: Settings, schedule: bool = True) -> list[RunnerDeployment]:
    """nightly (cron at `nightly_cron` in the shop's timezone, one at a time, later triggers
    queued), retrain, backfill, and the torch branches' train-branch/gpu."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.schedules import Cron

    from flows.adhoc import backfill, retrain
    from flows.nightly import nightly
    from flows.train_branch import train_branch

    one_at_a_time = ConcurrencyLimitConfig(
        limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE
    )
    schedules = [Cron(settings.nightly_cron, timezone=settings.timezone)] if schedule else []
    return [
        nightly.to_deployment(
            name="nightly",
            schedules=schedules,
            concurrency_limit=one_at_a_time,
            tags=TAGS,
            description=f"The nightly pipeline at {settings.nightly_cron} ({settings.timezone}).",
        ),
        retrain.to_deployment(name="retrain", concurrency_limit=one_at_a_time, tags=TAGS),
        backfill.to_deployment(name="backfill", concurrency_limit=one_at_a_time, tags=TAGS),
        train_branch.to_deployment(name="gpu", tags=[*TAGS, "gpu"]),
    ]
