"""The pricing branch: estimate elasticities from the sales history, take expected units at
the current price from tonight's demand forecast (or a trailing mean), pick profit-maximising
prices with the MILP, gate against current prices, log a child MLflow run, and build
`marts.price_recommendations`.

IO only: the modelling is `models.pricing`. Runs after the demand branch when both run.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
from collections import Counter
from datetime import date

import numpy as np
import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from models.pricing import (
    Elasticities,
    ElasticityConfig,
    PricingConfig,
    PricingProblem,
    SkuElasticity,
    current_price_admissible,
    fit_sku_elasticity,
    keep_current_prices,
    optimise_prices,
    shrink_elasticities,
    solution_frame_columns,
)
from nightshift.runlog import progress_reporter, task_logger
from nightshift.settings import Settings
from nightshift.warehouse import (
    open_warehouse,
    query_frame,
    run_sql_over_frames,
    table_exists,
)
from tasks.branch import BranchResult
from tasks.parallel import one_thread_per_process
from tasks.runs import RunContext
from tasks.tracking import (
    child_run,
    log_flat,
    log_frames,
    register_artifacts,
)

MART = "price_recommendations"
REGISTERED_NAME = "nightshift-pricing"


_highs_banner_lock = threading.Lock()
_highs_banner_sent: list[bool] = []


def send_highs_banner_to_stderr() -> None:
    """Make this process's first HiGHS solver object with stdout pointed at stderr.

    HiGHS prints its two-line banner from C++, straight to file descriptor 1, when the
    first solver object of a process is made, before PuLP can turn its output off. It
    landed in the middle of `nightshift run`'s standard output, which is meant to hold only
    the night's summary. Once per process (HiGHS prints it once); anything another thread
    writes to stdout in that instant goes to stderr with it, not lost. Without highspy
    (CBC) or without usable descriptors, nothing to do."""
    with _highs_banner_lock:
        if _highs_banner_sent:
            return
        _highs_banner_sent.append(True)
        try:
            import highspy
        except ImportError:
            return
        try:
            sys.stdout.flush()
            saved = os.dup(1)
        except (OSError, ValueError):
            return
        try:
            os.dup2(2, 1)
            highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def metric_name(text: str) -> str:
    """`binding_infeasible: max_change+stock` -> `binding_infeasible_max_change_stock`."""
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", text)).strip("_")


def pricing_config(settings: Settings) -> PricingConfig:
    return PricingConfig(
        steps=tuple(settings.pricing_steps),
        charm_endings=settings.pricing_charm_endings,
        min_margin=settings.pricing_min_margin,
        max_change=settings.pricing_max_change,
        category_band=settings.pricing_category_band,
        solver=settings.pricing_solver,
        time_limit_seconds=settings.pricing_time_limit_seconds,
        mip_gap=settings.pricing_mip_gap,
    )


def elasticity_config(settings: Settings) -> ElasticityConfig:
    return ElasticityConfig(default=settings.pricing_default_elasticity)


def estimate_elasticities(
    panel: pl.DataFrame, skus: list[str], categories: list[str], config: ElasticityConfig
) -> tuple[Elasticities, list[str]]:
    """One regression per SKU in `skus` (no sales in the window: no own estimate), then
    shrinkage; returns the shrunk estimates and each SKU's reason for having no own one."""
    by_sku = {key[0]: part for key, part in panel.group_by("sku", maintain_order=True)}
    report = progress_reporter(f"elasticities for {len(skus)} SKUs", len(skus))
    fits = []
    with one_thread_per_process():
        for done, sku in enumerate(skus, 1):
            part = by_sku.get(sku)
            if part is None:
                fits.append(SkuElasticity(None, None, "no sales in the window"))
            else:
                days = part["date"].to_numpy().astype("datetime64[D]").astype(np.int64)
                fits.append(
                    fit_sku_elasticity(
                        part["units"].to_numpy(),
                        part["price"].to_numpy(),
                        part["category_units"].to_numpy(),
                        days,
                        config,
                    )  # fmt: skip
                )
            if done % 250 == 0 or done == len(skus):
                report(done)
    return shrink_elasticities(fits, categories, config), [f.reason for f in fits]


def load_inputs(settings: Settings, as_of: date) -> tuple[pl.DataFrame, pl.DataFrame, str]:
    """Products with stock and the trailing mean, the elasticity panel, and where expected
    units come from: tonight's demand forecast when the demand branch wrote one for this
    as_of, else the trailing mean."""
    horizon = settings.pricing_horizon_days
    with open_warehouse(settings) as con:
        products = query_frame(con, "pricing/products.sql", {"as_of": as_of, "horizon": horizon})
        panel = query_frame(
            con, "pricing/demand_panel.sql", {"as_of": as_of, "days": settings.pricing_history_days}
        )
        forecast = None
        if table_exists(con, "marts.demand_forecast"):
            forecast = query_frame(
                con, "pricing/forecast_units.sql", {"as_of": as_of, "horizon": horizon}
            )
    trailing = pl.col("mean_daily_units") * horizon
    if forecast is not None and forecast.height:
        products = products.join(forecast, on="sku", how="left").with_columns(
            base_units=pl.coalesce("forecast_units", trailing),
            demand_source=pl.when(pl.col("forecast_units").is_not_null())
            .then(pl.lit("forecast"))
            .otherwise(pl.lit("trailing_mean")),
        )
        source = "forecast"
    else:
        products = products.with_columns(base_units=trailing, demand_source=pl.lit("trailing_mean"))
        source = "trailing_mean"
    return products, panel, source


@task(name="pricing", cache_policy=NO_CACHE)
def run_pricing(settings: Settings, run: RunContext) -> BranchResult:
    """Recommend a price per active product for `run.as_of`; build the mart."""
    logger = task_logger(__name__)
    config = pricing_config(settings)
    products, panel, demand_source = load_inputs(settings, run.as_of)
    with child_run(settings, run, "pricing") as child:
        digest = hashlib.sha256(panel.hash_rows().to_numpy().tobytes()).hexdigest()
        log_flat(
            settings,
            child,
            params={
                **{k: v for k, v in config.__dict__.items()},
                "horizon_days": settings.pricing_horizon_days,
                "history_days": settings.pricing_history_days,
                "demand_source": demand_source,
                "n_skus": products.height,
            },
            tags={"nightshift.input_digest": digest},
        )
        skus = products["sku"].to_list()
        elasticities, reasons = estimate_elasticities(
            panel, skus, products["category"].to_list(), elasticity_config(settings)
        )
        problem = PricingProblem(
            sku=np.asarray(skus, dtype=object),
            category=products["category"].to_numpy().astype(str),
            current_price=products["current_price"].to_numpy().astype(np.float64),
            unit_cost=products["unit_cost"].to_numpy().astype(np.float64),
            elasticity=elasticities.elasticity,
            base_units=np.maximum(products["base_units"].to_numpy().astype(np.float64), 0.0),
            available=products["available_units"].to_numpy().astype(np.float64),
        )
        send_highs_banner_to_stderr()
        cands, solution = optimise_prices(problem, config)
        columns = solution_frame_columns(problem, cands, solution)
        comparable = current_price_admissible(problem, config)
        optimum = float(columns["expected_profit"][comparable].sum())
        current = float(columns["current_expected_profit"][comparable].sum())
        fell_back = solution.status.startswith("fallback")
        promoted = not fell_back and optimum >= current - 1e-6 * max(abs(current), 1.0)
        gate = (
            f"{solution.status}; expected profit {optimum:,.2f} vs {current:,.2f} at current "
            f"prices on the {int(comparable.sum())} SKUs whose current price meets the rules"
        )
        if promoted:
            model = f"milp/{solution.solver}"
        else:
            model = "current_price (solver fallback)" if fell_back else "current_price (gate)"
            kept = keep_current_prices(solution, "solver fallback" if fell_back else "gate")
            columns = solution_frame_columns(problem, cands, kept)
        binding = Counter(str(b) for b in columns["binding_constraint"])
        sources = Counter(str(s) for s in elasticities.source)
        log_flat(
            settings,
            child,
            metrics={
                "objective": solution.objective,
                "solve_seconds": solution.solve_seconds,
                "build_seconds": solution.build_seconds,
                "expected_profit": float(columns["expected_profit"].sum()),
                "current_expected_profit": float(columns["current_expected_profit"].sum()),
                "profit_uplift": float(columns["profit_uplift"].sum()),
                "skus_repriced": float(
                    (columns["recommended_price"] != problem.current_price).sum()
                ),
                "infeasible": float(len(solution.infeasible)),
                "promoted": float(promoted),
                **{metric_name(f"binding_{k}"): float(v) for k, v in binding.items()},
                **{f"elasticity_source_{k}": float(v) for k, v in sources.items()},
            },  # fmt: skip
            tags={"nightshift.gate": gate, "nightshift.solver_status": solution.status},
        )
        rows = pl.DataFrame(
            {
                **{k: v for k, v in columns.items() if k != "binding_constraint"},
                "sku": skus,
                "binding_constraint": [str(b) for b in columns["binding_constraint"]],
                "elasticity_se": elasticities.se,
                "elasticity_source": [str(s) for s in elasticities.source],
                "demand_source": products["demand_source"],
            },
            strict=False,
        )
        # Elasticities and the chosen prices are the pricing "model": registered always,
        # champion only when the gate passed.
        log_frames(
            settings, child, "model",
            {
                "price_recommendations.parquet": rows,
                "elasticities.parquet": pl.DataFrame(
                    {
                        "sku": skus,
                        "category": problem.category,
                        "elasticity": elasticities.elasticity,
                        "se": elasticities.se,
                        "source": [str(s) for s in elasticities.source],
                        "own_estimate": elasticities.own_estimate,
                        "no_own_estimate_because": reasons,
                    }
                )
            },
        )  # fmt: skip
        version = register_artifacts(settings, child, "model", REGISTERED_NAME)
        if promoted:
            model = f"{model} {REGISTERED_NAME}/{version}"
        if solution.infeasible:
            log_flat(
                settings, child, tags={"nightshift.infeasible": str(solution.infeasible)[:4000]}
            )
        run_sql_over_frames(
            settings,
            {"price_recommendations_rows": rows},
            {"marts/price_recommendations.sql": run.lineage(child, model=model)},
        )
    logger.info(
        "pricing: %s; %d SKUs, %d repriced, uplift %s, %d infeasible",
        gate, problem.sku.size, int((columns["recommended_price"] != problem.current_price).sum()),
        f"{float(columns['profit_uplift'].sum()):,.2f}", len(solution.infeasible),
    )  # fmt: skip
    return BranchResult(
        name="pricing",
        marts=[MART],
        model=model,
        metrics={"expected_profit": optimum},  # solve time is logged, not a quality metric
        baseline_metrics={"expected_profit": current},
        promoted=promoted,
        mlflow_run_id=child,
        gate=gate,
        registered_name=REGISTERED_NAME,
        registered_version=version,
    )
