"""The demand branch: read the daily panel, backtest and gate the LSTM, log a child MLflow
run with a forecast-fan plot, and build `marts.demand_forecast`.

IO only: the modelling is `models.demand.backtest_and_forecast`.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import duckdb
import numpy as np
import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from models.demand import DemandConfig, DemandOutcome, DemandPanel, backtest_and_forecast
from nightshift.runlog import metrics_line, progress_reporter, task_logger
from nightshift.settings import Settings
from nightshift.warehouse import (
    open_warehouse,
    query_frame,
    run_sql_over_frames,
)
from tasks.branch import BranchResult
from tasks.runs import RunContext
from tasks.tracking import (
    child_run,
    log_flat,
    log_torch_model,
    tracking_client,
)

REGISTERED_MODEL = "nightshift-demand"
MART = "demand_forecast"


def demand_config(settings: Settings) -> DemandConfig:
    return DemandConfig(
        input_days=settings.demand_input_days,
        horizon=settings.demand_horizon_days,
        epochs=settings.demand_epochs,
        windows_per_epoch=settings.demand_windows_per_epoch,
        patience=settings.demand_patience,
        min_improvement=settings.demand_min_improvement,
        ema_decay=settings.demand_ema_decay,
        min_history_days=settings.demand_min_history_days,
        seed=settings.demand_seed,
        device=settings.device,
    )


def load_panel(
    con: duckdb.DuckDBPyConnection, settings: Settings, as_of: date
) -> tuple[DemandPanel, pl.DataFrame]:
    """The SKU x day panel up to as_of (products that never sold included, without history)
    and the product frame in panel order."""
    cells = query_frame(con, "demand/daily_units.sql", {"as_of": as_of})
    products = query_frame(con, "demand/products.sql")
    start = cells["date"].min() if cells.height else as_of
    n_days = (as_of - start).days + 1
    products = products.with_row_index("series")
    categories = products["category"].unique().sort()
    cells = cells.join(products.select("sku", "series"), on="sku").with_columns(
        day=(pl.col("date") - pl.lit(start)).dt.total_days()
    )
    series = cells["series"].to_numpy().astype(np.int64)
    day = cells["day"].to_numpy().astype(np.int64)
    units = np.zeros((products.height, n_days))
    units[series, day] = cells["units_net"].to_numpy()
    price = np.repeat(
        products["current_price"].fill_null(1.0).to_numpy()[:, None].astype(np.float64), n_days, 1
    )
    price[series, day] = cells["price"].fill_null(1.0).to_numpy()
    first_day = np.full(products.height, n_days, dtype=np.int64)
    np.minimum.at(first_day, series, day)
    panel = DemandPanel(
        start=start,
        units=units,
        price=price,
        first_day=first_day,
        category=products["category"]
        .replace_strict(categories, pl.int_range(categories.len(), eager=True))
        .to_numpy()
        .astype(np.int64),
        holidays=frozenset(settings.holidays),
    )
    return panel, products


def panel_digest(panel: DemandPanel) -> str:
    digest = hashlib.sha256()
    for part in (np.round(panel.units, 6), np.round(panel.price, 6), panel.first_day):
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()


def forecast_rows(
    outcome: DemandOutcome, products: pl.DataFrame, as_of: date, horizon: int
) -> pl.DataFrame:
    """(sku, date, horizon_day, p10, p50, p90, is_fallback) for every active product."""
    n = products.height
    days = np.arange(1, horizon + 1)
    frame = pl.DataFrame(
        {
            "series": np.repeat(np.arange(n), horizon),
            "horizon_day": np.tile(days, n),
            "p10": outcome.forecast[..., 0].ravel(),
            "p50": outcome.forecast[..., 1].ravel(),
            "p90": outcome.forecast[..., 2].ravel(),
            "is_fallback": np.repeat(outcome.is_fallback, horizon),
        },
        schema_overrides={"series": pl.UInt32},
    )
    return (
        frame.join(products.select("series", "sku", "active"), on="series")
        .filter(pl.col("active"))
        .with_columns(date=pl.lit(as_of) + pl.duration(days=pl.col("horizon_day")))
        .select("sku", "date", "horizon_day", "p10", "p50", "p90", "is_fallback")
    )


def fan_figure(outcome: DemandOutcome, panel: DemandPanel, products: pl.DataFrame, top: int = 4):
    """Actual vs the LSTM's p10-p90 fan at the last backtest origin, for the top SKUs."""
    # matplotlib's object API, not pyplot: no global figure state, safe in any thread
    from matplotlib.figure import Figure

    backtest = outcome.backtest
    figure = Figure(figsize=(9, 2.4 * top))
    axes = figure.subplots(top, 1, squeeze=False)
    if not backtest:
        return figure
    origin = int(backtest["origin"])
    order = np.argsort(-backtest["actual"].sum(axis=1))[:top]
    skus = products["sku"].to_list()
    for ax, row in zip(axes[:, 0], order, strict=False):
        s = int(backtest["series"][row])
        history = np.maximum(panel.units[s, max(origin - 56, 0) : origin], 0)
        fan = backtest["lstm"][row]
        x_hist = np.arange(-history.size, 0)
        x_future = np.arange(fan.shape[0])
        ax.plot(x_hist, history, color="black", lw=1, label="actual")
        ax.plot(x_future, backtest["actual"][row], color="black", lw=1)
        ax.fill_between(x_future, fan[:, 0], fan[:, 2], alpha=0.3, label="p10-p90")
        ax.plot(x_future, fan[:, 1], lw=1.5, label="p50")
        ax.set_title(f"{skus[s]} from {panel.start + timedelta(days=origin)}", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    return figure


@task(name="demand", cache_policy=NO_CACHE)
def run_demand(settings: Settings, run: RunContext) -> BranchResult:
    """Backtest, gate and forecast demand for `run.as_of`; build marts.demand_forecast."""
    logger = task_logger(__name__)
    config = demand_config(settings)
    with open_warehouse(settings) as con:
        panel, products = load_panel(con, settings, run.as_of)
    logger.info(
        "demand: %d SKUs x %d days (%d with enough history)",
        panel.units.shape[0], panel.n_days,
        int((panel.first_day + config.min_history_days <= panel.n_days).sum()),
    )  # fmt: skip
    with child_run(settings, run, "demand") as child:
        log_flat(
            settings,
            child,
            params={
                **config.__dict__,
                "gate_margin": settings.demand_gate_margin,
                "arima_sample": settings.demand_arima_sample,
                "holidays": len(settings.holidays),
                "n_series": panel.units.shape[0],
                "n_days": panel.n_days,
            },
            tags={"nightshift.input_digest": panel_digest(panel)},
        )
        progress = progress_reporter("demand epochs", config.epochs)

        def on_epoch(record: dict[str, float]) -> None:
            epoch = int(record["epoch"])
            metrics = {k: v for k, v in record.items() if k != "epoch"}
            log_flat(settings, child, metrics=metrics, step=epoch)
            progress(epoch)
            logger.info("demand epoch %d: %s", epoch, metrics_line(metrics))

        outcome = backtest_and_forecast(
            panel, config, settings.demand_gate_margin, settings.demand_arima_sample, on_epoch
        )
        progress(config.epochs)
        flat = {
            f"{model}_{k}": v
            for model, metrics in {**outcome.metrics, **outcome.tier_metrics}.items()
            for k, v in metrics.items()
        }
        log_flat(
            settings,
            child,
            metrics={
                **{k.replace("/", "_"): v for k, v in flat.items() if np.isfinite(v)},
                "best_epoch": outcome.fitted.best_epoch if outcome.fitted else 0,
                # how far the p10/p90 gaps were widened to cover 80% of held-out days
                "interval_scale": outcome.fitted.interval_scale if outcome.fitted else 1.0,
                "promoted": float(outcome.promoted),
                "fallback_skus": float(outcome.is_fallback.sum()),
            },
            tags={"nightshift.gate": outcome.gate_reason},
        )
        figure = fan_figure(outcome, panel, products)
        tracking_client(settings).log_figure(child, figure, "forecast_fan.png")
        model, version = "baseline", None
        if outcome.fitted is not None:
            from models.demand import N_FEATURES, served_module

            module = served_module(outcome.fitted)
            # Two windows, not one: torch.export fixes every size-1 dimension of the example,
            # and a batch of 1 registered a model that refused any other batch size.
            example = np.zeros((2, config.input_days + config.horizon, N_FEATURES), np.float32)
            version = log_torch_model(settings, child, module, example, REGISTERED_MODEL)
            if outcome.promoted:
                model = f"{REGISTERED_MODEL}/{version}"
        rows = forecast_rows(outcome, products, run.as_of, config.horizon)
        run_sql_over_frames(
            settings,
            {"demand_forecast_rows": rows},
            {"marts/demand_forecast.sql": run.lineage(child, model=model)},
        )
    logger.info("demand: %s; published %s (%d rows)", outcome.gate_reason, model, rows.height)
    return BranchResult(
        name="demand",
        marts=[MART],
        model=model,
        metrics=outcome.metrics.get("lstm", {}),
        baseline_metrics=outcome.metrics.get("seasonal_naive", {}),
        promoted=outcome.promoted,
        mlflow_run_id=child,
        gate=outcome.gate_reason,
        registered_name=REGISTERED_MODEL if version else None,
        registered_version=version,
    )
