"""The nightly flow: (map an Online Retail file, or generate a demo shop, when its parameters
ask) -> ingest -> freshness -> features -> KPIs -> model branches -> publish -> report ->
delete model versions and export partitions beyond the kept numbers.

Only wiring lives here. Every step is a task in tasks/; a model family is one task that
returns a `BranchResult` and one line in `MODEL_BRANCHES`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import Literal, get_args

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import Completed, State

from nightshift.errors import ConfigError, NightshiftError, failure_text
from nightshift.runlock import home_lock
from nightshift.runlog import stop_the_work_of
from nightshift.settings import Settings, load_settings
from nightshift.stopping import reraise_stop, stop_behind
from tasks.branch import BranchResult
from tasks.demand import run_demand
from tasks.features import build_features, build_kpis
from tasks.freshness import check_data_freshness, check_quarantine_share
from tasks.html_report import publish_html_report
from tasks.ingest import ingest_landing
from tasks.inventory import run_inventory
from tasks.landing import generate_shop_if_missing, map_online_retail
from tasks.parallel import threads_per_branch
from tasks.pricing import run_pricing
from tasks.publish import prune_export_partitions, publish_marts
from tasks.quality import build_model_quality
from tasks.recommender import run_recommender
from tasks.report import write_run_artifacts
from tasks.routing import read_branch_result
from tasks.runs import RunContext, abandon_dead_runs, close_run, new_run_id, open_run
from tasks.segments import run_segments
from tasks.tracking import (
    finish_parent_run,
    promote_champions,
    prune_model_versions,
    start_parent_run,
)

# The marts each branch builds: when a branch fails, these are carried over and flagged.
BRANCH_MARTS: dict[str, list[str]] = {
    "recommender": ["recommendations"],
    "demand": ["demand_forecast"],
    "inventory": ["inventory_plan"],
    "segments": ["customer_segments", "segment_profiles"],
    "pricing": ["price_recommendations"],
}

# name -> task(settings, run) -> BranchResult. Up to `branch_concurrency` run at once, in this
# order; BRANCH_AFTER orders the ones that read another's output (pricing reads tonight's
# demand forecast).
MODEL_BRANCHES: dict[str, Callable[[Settings, RunContext], BranchResult]] = {
    "recommender": run_recommender,
    "demand": run_demand,
    "inventory": run_inventory,
    "segments": run_segments,
    "pricing": run_pricing,
}


# Branches that start only once these others have finished (passed or failed).
BRANCH_AFTER: dict[str, tuple[str, ...]] = {"pricing": ("demand",)}

# The choice list the Prefect UI shows for `models`; a test keeps it equal to MODEL_BRANCHES.
ModelName = Literal["recommender", "demand", "inventory", "segments", "pricing"]
# Where a night's data comes from, and the synthetic shops a demo night can generate: the
# choice lists the Prefect UI shows for `source` and `profile` (a test keeps ShopProfile
# equal to the generator's profiles).
Source = Literal["landing", "online-retail"]
ShopProfile = Literal["tiny", "small", "medium", "large"]
# Branches that train torch models: routed to GPU workers when NIGHTSHIFT_GPU_POOL is set.
TorchBranch = Literal["recommender", "demand"]
TORCH_BRANCHES: tuple[str, ...] = get_args(TorchBranch)


class RoutedBranchError(NightshiftError):
    """A branch routed to the GPU pool did not complete there."""


def selected_models(models: list[str] | None) -> list[str]:
    """The branches to run, in `MODEL_BRANCHES` order (pricing after demand, whatever order
    they were named in): all by default, else the named ones, rejecting unknown names."""
    if models is None:
        return list(MODEL_BRANCHES)
    unknown = [name for name in models if name not in MODEL_BRANCHES]
    if unknown:
        available = ", ".join(MODEL_BRANCHES) or "none yet"
        raise ConfigError(f"unknown model(s) {', '.join(unknown)}; available: {available}")
    return [name for name in MODEL_BRANCHES if name in models]


def run_branches(
    settings: Settings, run: RunContext, names: list[str]
) -> tuple[list[BranchResult], dict[str, str]]:
    """Run the branches up to `settings.branch_concurrency` at once (1: one after another,
    in `MODEL_BRANCHES` order, in the flow's thread; more: on the flow's thread pool),
    pricing once demand has finished (it reads tonight's forecast; it runs whether demand
    passed or failed). A branch that raises is recorded, not propagated: the others still
    run and publish, and the night is `degraded` instead of failed.

    Branches routed to the GPU pool run first, one at a time: their worker opens the
    warehouse file from another process, and DuckDB lets only one process hold it, so no
    local branch may have it open meanwhile."""
    logger = get_run_logger()
    outcomes: dict[str, BranchResult] = {}
    failures: dict[str, str] = {}

    def record_failure(name: str, exc: BaseException) -> None:
        reraise_stop(exc)  # a stop signal that landed in a DuckDB query is not a failed branch
        failures[name] = failure_text(exc)[:2000]
        logger.error("branch %s failed; its tables keep last night's rows: %s", name, exc)

    routed = [name for name in names if settings.gpu_pool and name in TORCH_BRANCHES]
    for name in routed:
        try:
            outcomes[name] = run_on_gpu_pool(settings, run, name)
        except Exception as exc:  # noqa: BLE001 - isolating branch failures is the point
            record_failure(name, exc)
    local = [name for name in names if name not in routed]
    lanes = min(settings.branch_concurrency, max(len(local), 1))
    cores = os.cpu_count() or 1
    with threads_per_branch(max(1, cores // lanes) if lanes > 1 else None):
        local_outcomes = run_local_branches(
            settings, run, {name: MODEL_BRANCHES[name] for name in local}, lanes, record_failure
        )
    outcomes.update(local_outcomes)
    return [outcomes[name] for name in names if name in outcomes], failures


def run_local_branches(
    settings: Settings,
    run: RunContext,
    branches: dict[str, Callable[[Settings, RunContext], BranchResult]],
    lanes: int,
    record_failure: Callable[[str, BaseException], None],
) -> dict[str, BranchResult]:
    """Run `branches` (name -> task, in order) in `lanes` chains and collect what they return.

    One lane runs them one after another in the flow's own thread. Submitting them to the
    thread pool would start each in a new thread, and each thread that computes with torch
    keeps its own OpenMP team: with two teams' threads alive on 2 cores, libgomp stops
    spinning and sleeps at every barrier, and the LSTM's epochs took 1.5x as long as in the
    flow's thread (bench/RESULTS.md). More lanes submit the branches to the thread pool: a
    branch waits for the one before it in its lane and for its BRANCH_AFTER upstreams."""
    if lanes == 1:
        outcomes: dict[str, BranchResult] = {}
        for name, branch in branches.items():
            try:
                outcomes[name] = branch(settings, run)
            except Exception as exc:  # noqa: BLE001 - isolating branch failures is the point
                record_failure(name, exc)
        return outcomes
    from prefect import allow_failure

    futures: dict[str, object] = {}
    lane_tails: list[object | None] = [None] * lanes
    for index, (name, branch) in enumerate(branches.items()):
        lane = index % lanes
        upstream = [futures[u] for u in BRANCH_AFTER.get(name, ()) if u in futures]
        upstream += [lane_tails[lane]] if lane_tails[lane] is not None else []
        futures[name] = branch.submit(
            settings, run, wait_for=[allow_failure(f) for f in upstream] or None
        )
        lane_tails[lane] = futures[name]
    outcomes = {}
    for name, future in futures.items():
        try:
            outcomes[name] = future.result()
        except Exception as exc:  # noqa: BLE001 - isolating branch failures is the point
            record_failure(name, exc)
    return outcomes


def run_on_gpu_pool(settings: Settings, run: RunContext, name: str) -> BranchResult:
    """Run a torch branch as a run of the GPU deployment (`train-branch/gpu`, on the pool
    named by NIGHTSHIFT_GPU_POOL) and wait for it. It writes its marts to the shared home's
    warehouse and its BranchResult beside them; this process holds no warehouse connection
    meanwhile, so the two never contend for the DuckDB file."""
    from prefect.deployments import run_deployment

    get_run_logger().info(
        "routing %s to %s on pool %s", name, settings.gpu_deployment, settings.gpu_pool
    )
    child = run_deployment(
        settings.gpu_deployment,
        parameters={
            "branch": name,
            "as_of": run.as_of.isoformat(),
            "run_id": run.run_id,
            "flow_run_id": run.flow_run_id,
            "mlflow_parent_run_id": run.mlflow_run_id,
        },
        flow_run_name=f"{name}-{run.run_id}",
        tags=["nightshift", "gpu", name],
        timeout=None,
    )
    if child.state is None or not child.state.is_completed():
        state = child.state.name if child.state else "unknown"
        message = child.state.message if child.state else ""
        raise RoutedBranchError(
            f"{settings.gpu_deployment} run {child.id} for {name} ended {state}: {message}"
        )
    return read_branch_result(settings, run.run_id, name)


def source_label(source: str, source_path: str | None, profile: str | None) -> str:
    """What `runs.source` records for these parameters, refusing combinations that cannot
    mean anything before the night starts."""
    if source == "online-retail":
        if not source_path:
            raise ConfigError(
                "source online-retail needs source_path: the Online Retail file (CSV, Parquet "
                "or .xlsx) on the machine that runs the flow"
            )
        if profile:
            raise ConfigError(
                f"profile {profile} generates a synthetic shop; it cannot be combined with "
                "source online-retail"
            )
        return f"online-retail:{source_path}"
    if source_path:
        raise ConfigError(
            "source_path is only read with source online-retail; landing files go in "
            "<NIGHTSHIFT_HOME>/landing/<table>/"
        )
    return "landing"


def checked_as_of(settings: Settings, as_of: date | None) -> date:
    """The business date to run: yesterday in the shop's timezone unless given; not future."""
    day = as_of or settings.default_as_of()
    if day > settings.today():
        raise ConfigError(
            f"as_of {day} is in the future (today is {settings.today()} in {settings.timezone})"
        )
    return day


@flow(name="nightly", description="Ingest, build features and KPIs, run models, publish marts.")
def nightly(
    as_of: date | None = None,
    models: list[ModelName] | None = None,
    full_refresh: bool = False,
    source: Source = "landing",
    source_path: str | None = None,
    profile: ShopProfile | None = None,
) -> dict[str, object] | State:
    """Run one night for `as_of` (default: yesterday in the shop's timezone): the night's
    summary, in a Completed state named Degraded when a model branch failed.

    Runs on one home take turns (`nightshift.runlock`): a run started while another is
    publishing waits for it rather than failing or interleaving.

    Args:
        as_of: the business date the run covers; it sees only data on or before it. A plain
            date, never converted between timezones; empty means yesterday in
            NIGHTSHIFT_TIMEZONE on the machine that runs the flow.
        models: model branches to run (default all); [] runs ingest, features and KPIs only.
        full_refresh: reload every landing file and judge every row again, instead of only
            the new and corrected files; loaded files no longer in landing keep their rows.
        source: where the night's data comes from: `landing`, the files in the home's
            landing folder, or `online-retail`, the UCI Online Retail file at `source_path`,
            mapped into the landing folder first.
        source_path: the Online Retail file on the machine that runs the flow (only with
            source online-retail).
        profile: if no orders have landed yet, first generate this synthetic shop, ending on
            as_of (a demo, as `make run` does); ignored once orders have landed.
    """
    settings = load_settings()
    day = checked_as_of(settings, as_of)
    names = selected_models(models)
    label = source_label(source, source_path, profile)
    run_id = new_run_id(day)
    logger = get_run_logger()
    if warning := settings.ignored_mlflow_variable():
        logger.warning(warning)
    try:
        with home_lock(
            settings.lock_path,
            run_id,
            settings.lock_timeout_seconds,
            lambda holder: logger.info("waiting for %s to finish with %s", holder, settings.home),
        ):
            night = run_night(
                settings, day, names, run_id, full_refresh, label, source_path, profile
            )
    except RuntimeError as exc:
        reraise_stop(exc)  # also where run_night has not opened the run yet
        raise
    return degraded_if_any_failed(night, [night])


def degraded_if_any_failed(
    summary: object, nights: list[dict[str, object]]
) -> dict[str, object] | list[dict[str, object]] | State:
    """A flow's return value: `summary` as it is when every night in it published whole,
    else a Completed state named Degraded that carries it.

    Published, but not whole: the UI's run list shows Degraded instead of Completed, and an
    automation can alert on its `prefect.flow-run.Degraded` event. Calling the flow still
    returns `summary`."""
    failed = {
        night["as_of"]: night["failed_branches"] for night in nights if night["failed_branches"]
    }
    if not failed:
        return summary
    what = "; ".join(f"{', '.join(branches)} on {day}" for day, branches in failed.items())
    return Completed(
        name="Degraded",
        message=f"published, but branch(es) failed: {what}; their tables keep their last rows",
        data=summary,
    )


def record_failed_night(
    settings: Settings, run_id: str, mlflow_run_id: str | None, exc: BaseException
) -> None:
    """Record a failed night in `runs` and close its MLflow run, as far as each can be done.

    What failed the night can fail its records too: a full disk stops MLflow's SQLite
    store as well. An error there used to replace the night's own, so the run ended with
    'could not set a tag' instead of what went wrong; it is logged instead."""
    records = {
        "runs": lambda: close_run(
            settings, run_id, "failed", mlflow_run_id, error=failure_text(exc)
        )
    }
    if mlflow_run_id:
        records["MLflow"] = lambda: finish_parent_run(settings, mlflow_run_id, "failed")
    for where, record in records.items():
        try:
            record()
        except Exception as failure:  # noqa: BLE001 - the night's own error is the one raised
            get_run_logger().error(
                "could not record the failed night in %s: %s", where, failure_text(failure)
            )


def run_night(
    settings: Settings,
    day: date,
    names: list[str],
    run_id: str,
    full_refresh: bool,
    source: str = "landing",
    source_path: str | None = None,
    profile: str | None = None,
) -> dict[str, object]:
    """The night's steps, run while holding the home's lock. `source` is what
    `source_label` made of the flow's parameters."""
    flow_run_id = str(flow_run.id) if flow_run.id else None
    abandoned = abandon_dead_runs(settings)
    if abandoned:
        get_run_logger().warning("marked runs killed before they finished: %s", abandoned)
    open_run(settings, run_id, day, source, names, full_refresh, flow_run_id)
    mlflow_run_id = None
    try:
        mlflow_run_id = start_parent_run(
            settings,
            run_id,
            day,
            flow_run_id,
            {
                "as_of": day.isoformat(),
                "models": ",".join(names),
                "full_refresh": full_refresh,
                "source": source,
            },
        )
        run = RunContext(run_id, day, flow_run_id, mlflow_run_id)
        if source_path:
            map_online_retail(settings, Path(source_path))
        elif profile:
            generate_shop_if_missing(settings, profile, day)
        ingest = ingest_landing(settings, run_id, full_refresh)
        check_quarantine_share(settings, ingest)
        check_data_freshness(settings, day)
        feature_defaults = build_features(settings, day, ingest.input_digests)
        kpis = build_kpis(settings, day, run_id, mlflow_run_id)
        branches, failures = run_branches(settings, run, names)
        quality = build_model_quality(settings, run, branches, failures)
        defaults_used = [*ingest.defaults_used, *feature_defaults]
        status = "degraded" if failures else "succeeded"
        close_run(
            settings,
            run_id,
            status,
            mlflow_run_id,
            ingest.input_digests,
            ingest.audit,
            defaults_used,
            error="; ".join(f"{name}: {error}" for name, error in failures.items()) or None,
        )
        stale = {mart: name for name in failures for mart in BRANCH_MARTS[name]}
        published = publish_marts(
            settings, run_id, day, [kpis, *[m for b in branches for m in b.marts], *quality], stale
        )
    except BaseException as caught:
        stop_the_work_of(flow_run_id)  # branches still running on the flow's thread pool
        exc = stop_behind(caught)  # a stop signal that landed in a DuckDB query, raised again
        record_failed_night(settings, run_id, mlflow_run_id, exc)
        if exc is caught:
            raise
        raise exc from caught
    try:  # the champion is the model behind the published tables: moved only now
        champions = promote_champions(settings, branches)
        if champions:
            get_run_logger().info("champion now: %s", champions)
    except Exception as exc:  # noqa: BLE001 - the marts are published; the previous champions stay
        reraise_stop(exc)
        get_run_logger().error("could not move the champion aliases; they stay: %s", exc)
    try:
        report = publish_html_report(settings, day, mlflow_run_id)
    except Exception as exc:  # noqa: BLE001 - the marts are published; a report bug must not fail the night
        reraise_stop(exc)
        report = None
        get_run_logger().error("the HTML report could not be written: %s", exc)
    housekeeping = {  # beyond NIGHTSHIFT_MODEL_VERSIONS_KEPT and NIGHTSHIFT_EXPORT_NIGHTS_KEPT
        "old model versions (champions kept)": partial(prune_model_versions, settings),
        "old export partitions": partial(prune_export_partitions, settings, day),
    }
    for what, step in housekeeping.items():
        try:
            pruned = step()
            if pruned:
                get_run_logger().info("deleted %s: %s", what, pruned)
        except Exception as exc:  # noqa: BLE001 - housekeeping must not fail a published night
            reraise_stop(exc)
            get_run_logger().warning("could not delete %s: %s", what, exc)
    finish_parent_run(
        settings,
        mlflow_run_id,
        status,
        ingest.audit,
        {
            "run_id": run_id,
            "status": status,
            "failed_branches": failures,
            "as_of": day.isoformat(),
            "row_counts": ingest.audit,
            "defaults_used": defaults_used,
            "published": published,
        },
        ingest.input_digests,
    )
    write_run_artifacts(
        settings, run_id, day, ingest, branches, published, mlflow_run_id, failures, report
    )
    return {
        "run_id": run_id,
        "status": status,
        "failed_branches": failures,
        "as_of": day.isoformat(),
        "orders_first_date": ingest.orders_first_date,
        "orders_last_date": ingest.orders_last_date,
        "mlflow_run_id": mlflow_run_id,
        "published": published,
        "marts": str(settings.marts_path),
        "report": report,
        "files_not_read": ingest.files_not_read,
    }
