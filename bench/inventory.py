"""Inventory benchmark: the nightshift planner (2 processes) against a plain serial statsmodels
ARIMA loop and statsforecast's AutoARIMA (n_jobs=2), on a 28-day holdout.

Every model fits on each SKU's history up to as_of - 28 days and forecasts the 28 held-out
days; accuracy is MASE (against the in-sample weekly-naive error) and the coverage of a
daily 80% interval, scored by the demand forecaster's `forecast_metrics`, on SKUs with at
least 28 days of history (what every peer can fit).

- nightshift: the branch's whole planning step — classify, fit (SARIMA by AICc over four
  orders / Croston-SBA / mean), replay 8 weeks of policy, plan — for *every* SKU, as mapped
  Prefect task runs on 2 processes (the Prefect API is started before the clock).
  Its daily interval is mean +- 1.2816 sd from the model's own per-day variance.
- plain loop: `ARIMA(y, order=(1,0,1), seasonal_order=(1,0,0,7), trend="c").fit()` with
  statsmodels defaults on the full history, one SKU after another: what a first version
  would do. Too slow for all SKUs in a benchmark, so it runs on a random sample
  (`--sample`, default 500) and its throughput is measured there.
- AutoARIMA: statsforecast `AutoARIMA(season_length=7)`, n_jobs=2, on the same sample.

The per-SKU time distribution is the planner's, timed serially SKU by SKU on the sample.
Machines are noisy: compare ratios, read absolute times only beside the peers'.

Usage:
  python bench/inventory.py [--profile medium] [--workdir DIR] [--keep] [--sample 500]
Targets (issue 6): >= 5x the plain loop's throughput; MASE no more than 3% behind AutoARIMA.
Needs the bench extra: pip install -e '.[bench]' (statsforecast).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
import warnings
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from common import ROOT, prepare_warehouse, run_stage

HOLDOUT = 28
Z80 = 1.2816  # two-sided 80% normal interval


def holdout_data(workdir: Path, as_of: date, sample: int, seed: int = 0):
    """SKUs fitted on history to as_of - 28, their 28 actual days, the weekly-naive scale,
    and the indices of the eligible SKUs and of the random sample among them."""
    from nightshift.settings import load_settings
    from tasks.inventory import load_skus

    settings = load_settings(home=workdir)
    cutoff = as_of - timedelta(days=HOLDOUT)
    train = load_skus(settings, cutoff)
    full = {item.sku: item.history for item in load_skus(settings, as_of)}
    actual = np.zeros((len(train), HOLDOUT))
    for i, item in enumerate(train):
        tail = np.maximum(full[item.sku][-HOLDOUT:], 0.0)
        actual[i, HOLDOUT - tail.size :] = tail
    scale = np.array([weekly_naive_mae(item.history) for item in train])
    eligible = np.array([i for i, item in enumerate(train) if item.history.size >= 28])
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(eligible, size=min(sample, eligible.size), replace=False))
    return settings, cutoff, train, actual, scale, eligible, chosen


def weekly_naive_mae(history: np.ndarray) -> float:
    y = np.maximum(history, 0.0)
    return float(np.abs(y[7:] - y[:-7]).mean()) if y.size > 7 else 0.0


def score(fan: np.ndarray, actual: np.ndarray, scale: np.ndarray) -> dict[str, float]:
    from models.demand import forecast_metrics

    return forecast_metrics(np.maximum(fan, 0.0), actual, scale)


def stage_nightshift(workdir: Path, as_of: date, sample: int) -> dict:
    from models.inventory import plan_batch
    from tasks.inventory import inventory_config, plan_all
    from tasks.parallel import shared_prefect_api

    settings, cutoff, train, actual, scale, eligible, chosen = holdout_data(workdir, as_of, sample)
    config = inventory_config(settings)
    backtest_days = 7 * settings.inventory_backtest_weeks
    with shared_prefect_api():  # start the API first: the night has it running already
        start = time.perf_counter()
        rows = plan_all(train, config, cutoff, backtest_days, settings.inventory_batch_size, 2)
        seconds = time.perf_counter() - start
    mean = np.array([r["forecast_28d"] for r in rows])
    sd = np.array([r["forecast_sd_28d"] for r in rows])
    fan = np.stack([mean - Z80 * sd, mean, mean + Z80 * sd], axis=-1)

    per_sku, classes = [], []
    for i in chosen:  # serial, one SKU at a time: the per-SKU cost distribution
        tick = time.perf_counter()
        row = plan_batch([train[i]], config, cutoff, backtest_days)[0]
        per_sku.append(time.perf_counter() - tick)
        classes.append(row["demand_class"])
    per_sku, classes = np.array(per_sku), np.array(classes)
    distribution = {
        "all": np.percentile(per_sku, [50, 90, 99, 100]).tolist(),
        **{
            name: [int((classes == name).sum()), *np.percentile(per_sku[classes == name], [50, 90])]
            for name in np.unique(classes)
        },
    }
    return {
        "seconds": seconds,
        "skus": len(train),
        "eligible": int(eligible.size),
        "series_per_second": len(train) / seconds,
        "classes": {c: sum(r["demand_class"] == c for r in rows) for c in {r["demand_class"] for r in rows}},
        "metrics_all": score(fan[eligible], actual[eligible], scale[eligible]),
        "metrics_sample": score(fan[chosen], actual[chosen], scale[chosen]),
        "per_sku_seconds": distribution,
    }  # fmt: skip


def stage_plain(workdir: Path, as_of: date, sample: int) -> dict:
    from statsmodels.tsa.arima.model import ARIMA

    _, _, train, actual, scale, _, chosen = holdout_data(workdir, as_of, sample)
    ARIMA(np.arange(60.0), order=(1, 0, 0)).fit()  # import and first-call cost off the clock
    fan = np.zeros((chosen.size, HOLDOUT, 3))
    failed = 0
    start = time.perf_counter()
    for row, i in enumerate(chosen):
        y = np.maximum(train[i].history, 0.0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = ARIMA(y, order=(1, 0, 1), seasonal_order=(1, 0, 0, 7), trend="c").fit()
            forecast = result.get_forecast(HOLDOUT)
            bounds = np.asarray(forecast.conf_int(alpha=0.2))
            fan[row] = np.column_stack([bounds[:, 0], forecast.predicted_mean, bounds[:, 1]])
        except (ValueError, np.linalg.LinAlgError):
            failed += 1
            fan[row] = y.mean()
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "skus": int(chosen.size),
        "failed": failed,
        "series_per_second": chosen.size / seconds,
        "metrics_sample": score(fan, actual[chosen], scale[chosen]),
    }


def stage_autoarima(workdir: Path, as_of: date, sample: int) -> dict:
    import polars as pl
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA

    _, _, train, actual, scale, _, chosen = holdout_data(workdir, as_of, sample)
    ids, ys, ds = [], [], []
    for i in chosen:
        y = np.maximum(train[i].history, 0.0)
        ids.append(np.full(y.size, i))
        ys.append(y)
        ds.append(np.arange(y.size))
    frame = pl.DataFrame(
        {"unique_id": np.concatenate(ids), "ds": np.concatenate(ds), "y": np.concatenate(ys)}
    )
    start = time.perf_counter()
    model = StatsForecast(models=[AutoARIMA(season_length=7)], freq=1, n_jobs=2)
    out = model.forecast(df=frame, h=HOLDOUT, level=[80]).sort("unique_id", "ds")
    seconds = time.perf_counter() - start
    fan = np.stack(
        [out["AutoARIMA-lo-80"].to_numpy(), out["AutoARIMA"].to_numpy(), out["AutoARIMA-hi-80"].to_numpy()],
        axis=1,
    ).reshape(chosen.size, HOLDOUT, 3)  # fmt: skip
    return {
        "seconds": seconds,
        "skus": int(chosen.size),
        "series_per_second": chosen.size / seconds,
        "metrics_sample": score(fan, actual[chosen], scale[chosen]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="medium")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--sample", type=int, default=500)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.stage:
        sys.path.insert(0, str(ROOT))
        if args.stage == "prepare":
            result = prepare_warehouse(args.workdir, args.profile, None)
        else:
            stage = {
                "nightshift": stage_nightshift,
                "plain": stage_plain,
                "autoarima": stage_autoarima,
            }[args.stage]
            result = stage(args.workdir, date.fromisoformat(args.as_of), args.sample)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="nightshift-bench-inventory-"))
    common = ["--workdir", str(workdir), "--profile", args.profile, "--sample", str(args.sample)]
    try:
        if not (workdir / "warehouse.duckdb").exists():
            night = run_stage(__file__, ["--stage", "prepare", *common])
        else:
            night = {"as_of": "2024-06-30"}
        common += ["--as-of", night["as_of"]]
        ours = run_stage(__file__, ["--stage", "nightshift", *common])
        plain = run_stage(__file__, ["--stage", "plain", *common])
        auto = run_stage(__file__, ["--stage", "autoarima", *common])
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"profile {args.profile}, holdout {HOLDOUT} days before {night['as_of']}: "
        f"{ours['skus']:,} SKUs ({ours['eligible']:,} with >= 28 days of history), "
        f"classes {ours['classes']}; sample of {plain['skus']} for the peers"
    )
    print(
        f"{'model':<34}{'SKUs':>7}{'seconds':>9}{'series/s':>10}{'RSS MB':>8}{'MASE':>8}{'80% cov.':>10}"
    )
    lines = [
        ("nightshift (2 procs), all SKUs", ours, ours["metrics_all"], ours["eligible"]),
        ("nightshift (2 procs), sample", ours, ours["metrics_sample"], plain["skus"]),
        ("plain ARIMA loop (1 proc), sample", plain, plain["metrics_sample"], plain["skus"]),
        ("AutoARIMA (2 jobs), sample", auto, auto["metrics_sample"], auto["skus"]),
    ]  # fmt: skip
    for name, run, metrics, scored in lines:
        print(
            f"{name:<34}{scored:>7,}{run['seconds']:>9.1f}{run['series_per_second']:>10.1f}"
            f"{run['peak_rss_mb']:>8,.0f}{metrics['mase']:>8.3f}{metrics['coverage']:>10.3f}"
        )  # fmt: skip
    speedup = ours["series_per_second"] / plain["series_per_second"]
    behind = ours["metrics_sample"]["mase"] / auto["metrics_sample"]["mase"] - 1
    print(f"plain loop failures: {plain['failed']}")
    print(
        f"throughput = {speedup:.1f}x the plain loop ({'meets' if speedup >= 5 else 'MISSES'} the >= 5x target)"
    )
    print(
        f"MASE = {behind:+.1%} vs AutoARIMA on the sample ({'meets' if behind <= 0.03 else 'MISSES'} the <= +3% target)"
    )
    dist = ours["per_sku_seconds"]
    print("per-SKU planning time, serial (ms): p50 {:.0f}, p90 {:.0f}, p99 {:.0f}, max {:.0f}".format(*[1000 * v for v in dist["all"]]))  # fmt: skip
    for name, values in dist.items():
        if name != "all":
            print(f"  {name:<13} {values[0]:>4} SKUs: p50 {1000 * values[1]:.0f} ms, p90 {1000 * values[2]:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
