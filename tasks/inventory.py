"""The inventory branch: read demand histories and stock positions, plan every SKU in
parallel batches, replay the policy and the baseline's to measure their achieved service
levels, gate on the plan's, log a child MLflow run, and build `marts.inventory_plan` from the
plan, or from the baseline when the gate was missed and the baseline replayed at least as well.

IO and process fan-out only: the modelling is `models.inventory.plan_batch`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date

import numpy as np
import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from models.inventory import (
    InventoryConfig,
    SkuInput,
    plan_batch,
    replaces_baseline,
    seasonal_profile,
)
from nightshift.runlog import progress_reporter, task_logger
from nightshift.settings import Settings
from nightshift.warehouse import (
    open_warehouse,
    query_frame,
    run_sql_over_frames,
)
from tasks.branch import BranchResult
from tasks.parallel import map_batches, one_thread_per_process
from tasks.runs import RunContext
from tasks.tracking import (
    child_run,
    log_flat,
    log_frames,
    register_artifacts,
    tracking_client,
)

MART = "inventory_plan"
REGISTERED_NAME = "nightshift-inventory"


def plan_frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    """The plan rows as the mart's columns (without the replay's working fields)."""
    return pl.DataFrame(rows).drop(
        "forecast_28d", "forecast_sd_28d", "backtest_mean_ending_stock", "converged"
    )


def inventory_config(settings: Settings) -> InventoryConfig:
    return InventoryConfig(
        service_level=settings.inventory_service_level,
        review_days=settings.inventory_review_days,
        min_history_days=settings.inventory_min_history_days,
        intermittent_method=settings.inventory_intermittent_method,
        yearly_season=settings.inventory_yearly_season,
    )


def category_seasons(
    daily: pl.DataFrame, positions: pl.DataFrame, as_of: date
) -> dict[str, np.ndarray]:
    """Each category's seasonal profile: the units its SKUs sold each calendar day up to
    as_of (returns are not demand), smoothed. Pooled over the category because one SKU's
    days are too sparse to show a season, while its SKUs share one."""
    if daily.is_empty():
        return {}
    pooled = (
        daily.join(positions.select("sku", "category"), on="sku")
        .group_by("category", "date")
        .agg(pl.col("units_net").clip(lower_bound=0).sum().alias("units"))
    )
    calendar = pl.date_range(daily["date"].min(), as_of, eager=True).alias("date")
    seasons = {}
    for (category,), part in pooled.group_by("category"):
        units = pl.DataFrame(calendar).join(part, on="date", how="left")["units"].fill_null(0)
        seasons[category] = seasonal_profile(units.to_numpy())
    return seasons


def load_skus(settings: Settings, as_of: date) -> list[SkuInput]:
    """Every product with its demand history (first sale to as_of) and stock position."""
    with open_warehouse(settings) as con:
        positions = query_frame(con, "inventory/positions.sql")
        daily = query_frame(con, "demand/daily_units.sql", {"as_of": as_of})
    grouped = daily.group_by("sku", maintain_order=True).agg(pl.col("units_net"))
    histories = {
        sku: np.asarray(values, dtype=np.float64)
        for sku, values in zip(grouped["sku"], grouped["units_net"].to_list(), strict=True)
    }
    seasons = category_seasons(daily, positions, as_of)
    overrides = settings.inventory_category_service_levels
    return [
        SkuInput(
            sku=row["sku"],
            history=histories.get(row["sku"], np.zeros(0)),
            lead_time_days=int(row["lead_time_days"]),
            lead_time_std_days=row["lead_time_std_days"],
            on_hand=float(row["on_hand"]),
            on_order=float(row["on_order"]),
            service_level=overrides.get(row["category"], settings.inventory_service_level),
            season=seasons.get(row["category"]),
            active=bool(row["active"]),
        )
        for row in positions.iter_rows(named=True)
    ]


@task(name="plan-inventory-batch", cache_policy=NO_CACHE)
def plan_inventory_batch(
    batch: list[SkuInput],
    config: InventoryConfig,
    as_of: date,
    backtest_days: int,
    baseline: bool,
) -> list[dict[str, object]]:
    """One batch of SKUs as its own task run, so the Prefect UI shows the fan-out and a
    failing batch is visible on its own rather than as one opaque branch failure."""
    with one_thread_per_process():
        return plan_batch(batch, config, as_of, backtest_days, baseline)


def plan_all(
    skus: list[SkuInput],
    config: InventoryConfig,
    as_of: date,
    backtest_days: int,
    batch_size: int,
    workers: int,
    baseline: bool = False,
    dask_address: str | None = None,
) -> list[dict[str, object]]:
    """Plan every SKU in batches of `batch_size`.

    One local batch, or one worker, runs in-process (no pool start-up for tiny shops);
    otherwise the batches are mapped as Prefect tasks (`tasks.parallel.map_batches`). Batches are
    pure, so the rows are identical serial, local-parallel or on Dask, in SKU order.
    """
    batches = [skus[i : i + batch_size] for i in range(0, len(skus), batch_size)]
    report = progress_reporter(f"planning {len(skus)} SKUs", len(batches))
    results: list[list[dict[str, object]]] = []
    if dask_address is None and (workers <= 1 or len(batches) <= 1):
        with one_thread_per_process():
            for done, batch in enumerate(batches, 1):
                results.append(plan_batch(batch, config, as_of, backtest_days, baseline))
                report(done)
    else:
        results = map_batches(
            plan_inventory_batch, batches, workers, dask_address, report,
            config=config, as_of=as_of, backtest_days=backtest_days, baseline=baseline,
        )  # fmt: skip
    return [row for batch in results for row in batch]


def service_summary(rows: list[dict[str, object]]) -> dict[str, float]:
    """Achieved cycle service level and target, overall and per demand class."""
    frame = pl.DataFrame(rows).select(
        "demand_class", "backtest_cycles", "backtest_cycles_met", "service_level_target",
        "backtest_mean_ending_stock", "order_qty",
    )  # fmt: skip
    replayed = frame.filter(pl.col("backtest_cycles") > 0)
    summary: dict[str, float] = {}
    for name, part in [("all", replayed), *replayed.group_by("demand_class")]:
        label = name if isinstance(name, str) else name[0]
        cycles = part["backtest_cycles"].sum()
        if cycles:
            summary[f"service_level_{label}"] = part["backtest_cycles_met"].sum() / cycles
            summary[f"service_target_{label}"] = float(
                (part["service_level_target"] * part["backtest_cycles"]).sum() / cycles
            )
            summary[f"mean_ending_stock_{label}"] = float(part["backtest_mean_ending_stock"].mean())
    return summary


def plot_samples(rows: list[dict[str, object]], skus: list[SkuInput], top: int = 4):
    """Recent demand, the forecast and the reorder point for the top-selling SKUs."""
    # matplotlib's object API, not pyplot: no global figure state, safe in any thread
    from matplotlib.figure import Figure

    volume = [float(np.maximum(item.history[-90:], 0).sum()) for item in skus]
    chosen = np.argsort(volume)[::-1][:top]
    figure = Figure(figsize=(9, 2.2 * top))
    axes = figure.subplots(top, 1, squeeze=False)
    for ax, index in zip(axes[:, 0], chosen, strict=False):
        item, row = skus[index], rows[index]
        history = np.maximum(item.history[-90:], 0)
        forecast = np.asarray(row["forecast_28d"])
        ax.plot(np.arange(-history.size, 0), history, color="black", lw=1, label="demand")
        ax.plot(np.arange(forecast.size), forecast, lw=1.5, label=f"{row['model']} forecast")
        ax.set_title(
            f"{item.sku} ({row['demand_class']}): reorder point {row['reorder_point']:.0f}, "
            f"on hand {item.on_hand:.0f}, order {row['order_qty']:.0f}",
            fontsize=9,
        )
        ax.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    return figure


def gate_verdict(
    achieved: float | None,
    baseline_achieved: float | None,
    target: float,
    tolerance: float,
    promoted: bool,
    published: bool,
) -> str:
    """The gate in words: the plan's and the baseline's replayed service levels against the
    target, and which plan the night publishes when the gate was missed."""
    if achieved is None:
        return "no SKU with enough history to replay the policy; published the baseline"
    baseline = "none replayed" if baseline_achieved is None else f"{baseline_achieved:.3f}"
    verdict = (
        f"achieved service level {achieved:.3f} vs target {target:.3f} "
        f"(needs >= target - {tolerance}); baseline {baseline}"
    )
    if promoted:
        return verdict
    if published:
        return verdict + "; not promoted, but published: the baseline replays worse"
    return verdict + "; published the baseline"


@task(name="inventory", cache_policy=NO_CACHE)
def run_inventory(settings: Settings, run: RunContext) -> BranchResult:
    """Plan stock for `run.as_of`, gate on the replayed service level, build the mart."""
    logger = task_logger(__name__)
    config = inventory_config(settings)
    skus = load_skus(settings, run.as_of)
    backtest_days = 7 * settings.inventory_backtest_weeks
    with child_run(settings, run, "inventory") as child:
        digest = hashlib.sha256()
        for item in skus:
            digest.update(item.sku.encode())
            digest.update(np.round(item.history, 6).tobytes())
        log_flat(
            settings,
            child,
            params={
                **config.__dict__,
                "backtest_weeks": settings.inventory_backtest_weeks,
                "gate_tolerance": settings.inventory_gate_tolerance,
                "batch_size": settings.inventory_batch_size,
                "workers": settings.inventory_workers,
                "executor": "dask" if settings.dask_address else "process_pool",
                "category_service_levels": settings.inventory_category_service_levels,
                "n_skus": len(skus),
            },
            tags={"nightshift.input_digest": digest.hexdigest()},
        )
        rows = plan_all(
            skus, config, run.as_of, backtest_days,
            settings.inventory_batch_size, settings.inventory_workers,
            dask_address=settings.dask_address,
        )  # fmt: skip
        summary = service_summary(rows)
        # The mean baseline costs about 1.6 ms a SKU, less than starting the pool's workers
        # again (5 s on `small`), so it is planned here, in batches all the same.
        baseline_rows = plan_all(
            skus, config, run.as_of, backtest_days, settings.inventory_batch_size, workers=1,
            baseline=True,
        )  # fmt: skip
        baseline_summary = service_summary(baseline_rows)
        achieved = summary.get("service_level_all")
        baseline_achieved = baseline_summary.get("service_level_all")
        target = summary.get("service_target_all", settings.inventory_service_level)
        promoted = achieved is not None and achieved >= target - settings.inventory_gate_tolerance
        published = promoted or replaces_baseline(achieved, baseline_achieved)
        gate = gate_verdict(
            achieved, baseline_achieved, target, settings.inventory_gate_tolerance,
            promoted, published,
        )  # fmt: skip
        classes = Counter(str(r["demand_class"]) for r in rows)
        reasons = Counter(
            str(r["fallback_reason"]).split(":")[0] for r in rows if r["fallback_reason"]
        )
        published_rows = rows if published else baseline_rows
        orders = np.array([float(r["order_qty"]) for r in published_rows])
        metrics = {
            **summary,
            **{f"baseline_{k}": v for k, v in baseline_summary.items()},
            **{f"class_{k}": float(v) for k, v in classes.items()},
            **{f"fallback_{k.replace(' ', '_')}": float(v) for k, v in reasons.items()},
            "skus_to_order": float((orders > 0).sum()),
            "units_to_order": float(orders.sum()),
            "order_qty_p50": float(np.median(orders[orders > 0])) if (orders > 0).any() else 0.0,
            "order_qty_p90": float(np.quantile(orders[orders > 0], 0.9))
            if (orders > 0).any()
            else 0.0,
            "promoted": float(promoted),
            "published_plan": float(published),
        }
        # The night's policies (model, lead-time demand, safety stock, reorder point per SKU)
        # are the inventory "model": registered always, champion only when the gate passed.
        log_frames(settings, child, "model", {"inventory_plan.parquet": plan_frame(rows)})
        version = register_artifacts(settings, child, "model", REGISTERED_NAME)
        log_flat(settings, child, metrics=metrics, tags={"nightshift.gate": gate})
        figure = plot_samples(published_rows, skus)
        tracking_client(settings).log_figure(child, figure, "sample_plans.png")
        frame = plan_frame(published_rows)
        run_sql_over_frames(
            settings,
            {"inventory_plan_rows": frame},
            {"marts/inventory_plan.sql": run.lineage(child)},
        )
    logger.info(
        "inventory: %s; %d SKUs planned, %d to order", gate, len(rows), int((orders > 0).sum())
    )
    return BranchResult(
        name="inventory",
        marts=[MART],
        model=f"{REGISTERED_NAME}/{version}" if published else "baseline",
        metrics={k: v for k, v in summary.items() if k.endswith("_all")},
        baseline_metrics={k: v for k, v in baseline_summary.items() if k.endswith("_all")},
        promoted=promoted,
        mlflow_run_id=child,
        gate=gate,
        registered_name=REGISTERED_NAME,
        registered_version=version,
    )
