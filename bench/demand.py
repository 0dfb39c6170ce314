"""Demand benchmark: the nightshift LSTM against seasonal naive and statsforecast's AutoETS.

All models forecast from the same rolling origins the branch backtests on (the last 28
days, origins 14 days apart), for the same SKUs (at least 28 days of history at the
origin), scored by the same functions (MASE, WAPE, p10-p90 coverage). Each model runs in
its own process, so peak RSS is its own. The LSTM's time is the whole modelling step of
the branch: load the panel from the warehouse, train, backtest (with its 20-SKU ARIMA
sample), forecast every SKU; MLflow logging (a few seconds) is not included.
Machines are noisy: compare the ratios, read absolute times only beside the peers'.

Usage:
  python bench/demand.py [--profile medium] [--workdir DIR] [--keep]
  python bench/demand.py --online-retail ../shared/data/online_retail.parquet [--top 500]
Targets (issue 5): MASE <= 0.9x seasonal naive on synthetic data; branch <= 5 min on
2 CPU cores for `medium`. Needs the bench extra: pip install -e '.[bench]' (statsforecast).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from common import ROOT, prepare_warehouse, run_stage


def top_panel(panel, top: int | None):
    """The `top` SKUs by units sold (all when None)."""
    from models.demand import DemandPanel

    if not top:
        return panel
    keep = np.sort(np.argsort(-np.maximum(panel.units, 0).sum(axis=1))[:top])
    return DemandPanel(
        panel.start, panel.units[keep], panel.price[keep], panel.first_day[keep],
        panel.category[keep], panel.holidays,
    )  # fmt: skip


def load(workdir: Path, as_of: date, top: int | None):
    from nightshift.settings import load_settings
    from nightshift.warehouse import open_warehouse
    from tasks.demand import load_panel

    with open_warehouse(load_settings(home=workdir)) as con:
        panel, _ = load_panel(con, load_settings(home=workdir), as_of)
    return top_panel(panel, top)


def stage_nightshift(workdir: Path, as_of: date, top: int | None) -> dict:
    import torch.optim  # noqa: F401 - import cost is not the branch's work

    from models.demand import backtest_and_forecast, predict_quantiles
    from nightshift.settings import load_settings
    from tasks.demand import demand_config

    settings = load_settings(home=workdir)
    start = time.perf_counter()
    panel = load(workdir, as_of, top)
    loaded = time.perf_counter()
    stamps: list[float] = []
    outcome = backtest_and_forecast(
        panel, demand_config(settings), settings.demand_gate_margin,
        settings.demand_arima_sample, lambda record: stamps.append(time.perf_counter()),
    )  # fmt: skip
    done = time.perf_counter()
    eligible = np.flatnonzero(~outcome.is_fallback)
    infer_start = time.perf_counter()
    predict_quantiles(outcome.fitted, panel, eligible, panel.n_days)
    inference = time.perf_counter() - infer_start
    epochs = np.diff([loaded, *stamps])
    return {
        "branch_seconds": done - start,
        "load_seconds": loaded - start,
        "epochs": len(stamps),
        "epoch_seconds": float(np.median(epochs)),
        "train_seconds": float(stamps[-1] - loaded),
        "inference_seconds": inference,
        "series": int(panel.units.shape[0]),
        "days": int(panel.n_days),
        "fallback": int(outcome.is_fallback.sum()),
        "metrics": outcome.metrics,
        "promoted": outcome.promoted,
    }


def stage_autoets(workdir: Path, as_of: date, top: int | None) -> dict:
    import polars as pl
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    from models.demand import DemandConfig, backtest_origins, forecast_metrics, naive_scale

    config = DemandConfig()
    panel = load(workdir, as_of, top)
    T, H = panel.n_days, config.horizon
    parts = []
    start = time.perf_counter()
    for origin in backtest_origins(T, H):
        series = np.flatnonzero(panel.first_day + config.min_history_days <= origin)
        days = min(H, T - origin)
        ids, ds, ys = [], [], []
        for s in series:
            history = np.maximum(panel.units[s, panel.first_day[s] : origin], 0.0)
            ids.append(np.full(history.size, s))
            ds.append(np.arange(panel.first_day[s], origin))
            ys.append(history)
        frame = pl.DataFrame(
            {"unique_id": np.concatenate(ids), "ds": np.concatenate(ds), "y": np.concatenate(ys)}
        )
        model = StatsForecast(models=[AutoETS(season_length=7)], freq=1, n_jobs=2)
        out = model.forecast(df=frame, h=H, level=[80]).sort("unique_id", "ds")
        fan = np.stack(
            [out["AutoETS-lo-80"].to_numpy(), out["AutoETS"].to_numpy(), out["AutoETS-hi-80"].to_numpy()],
            axis=1,
        ).reshape(series.size, H, 3)  # fmt: skip
        fan = np.maximum(fan, 0.0)[:, :days]
        actual = np.maximum(panel.units[series, origin : origin + days], 0.0)
        parts.append(forecast_metrics(fan, actual, naive_scale(panel, series, origin)))
    seconds = time.perf_counter() - start
    weights = np.array([p["series"] for p in parts])
    merged = {
        k: float(sum(p[k] * w for p, w in zip(parts, weights, strict=True)) / weights.sum())
        for k in ("mase", "wape", "pinball", "coverage")
    }
    return {"seconds": seconds, "metrics": {"autoets": merged}}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="medium")
    parser.add_argument("--online-retail", type=Path)
    parser.add_argument("--top", type=int, help="only the N best-selling SKUs")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.stage:
        sys.path.insert(0, str(ROOT))
        if args.stage == "prepare":
            result = prepare_warehouse(args.workdir, args.profile, args.online_retail)
        else:
            as_of = date.fromisoformat(args.as_of)
            stage = {"nightshift": stage_nightshift, "autoets": stage_autoets}[args.stage]
            result = stage(args.workdir, as_of, args.top)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="nightshift-bench-demand-"))
    common = ["--workdir", str(workdir), "--profile", args.profile]
    if args.online_retail:
        common += ["--online-retail", str(args.online_retail.resolve())]
    if args.top:
        common += ["--top", str(args.top)]
    try:
        night = run_stage(__file__, ["--stage", "prepare", *common])
        common += ["--as-of", night["as_of"]]
        ours = run_stage(__file__, ["--stage", "nightshift", *common])
        ets = run_stage(__file__, ["--stage", "autoets", *common])
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    data = "Online Retail" if args.online_retail else f"profile {args.profile}"
    top = f", top {args.top} SKUs" if args.top else ""
    print(
        f"{data}{top}, as_of {night['as_of']}: {ours['series']:,} SKUs x {ours['days']} days "
        f"({ours['fallback']:,} on the category fallback)"
    )
    print(
        f"LSTM: {ours['epochs']} epochs, {ours['epoch_seconds']:.1f} s/epoch (median), "
        f"{ours['train_seconds']:.1f} s training, {ours['inference_seconds']:.1f} s to forecast all SKUs, "
        f"branch {ours['branch_seconds']:.1f} s (load {ours['load_seconds']:.1f} s), peak RSS {ours['peak_rss_mb']:,.0f} MB"
    )  # fmt: skip
    print(
        f"AutoETS (statsforecast, 2 jobs): {ets['seconds']:.1f} s for both origins, peak RSS {ets['peak_rss_mb']:,.0f} MB"
    )
    print(f"{'model':<22}{'MASE':>8}{'WAPE':>8}{'pinball':>9}{'p10-p90 cov.':>14}{'SKUs':>8}")
    rows = {**ours["metrics"], **ets["metrics"]}
    for name in ("lstm", "seasonal_naive", "autoets", "arima", "lstm_on_arima_sample"):
        if name in rows:
            r = rows[name]
            series = f"{r['series']:>8,.0f}" if "series" in r else f"{'':>8}"
            print(
                f"{name:<22}{r['mase']:>8.3f}{r['wape']:>8.3f}{r['pinball']:>9.3f}{r['coverage']:>14.3f}{series}"
            )
    ratio = rows["lstm"]["mase"] / rows["seasonal_naive"]["mase"]
    print(
        f"LSTM MASE = {ratio:.2f}x seasonal naive ({'meets' if ratio <= 0.9 else 'MISSES'} the <= 0.9x target)"
    )
    minutes = ours["branch_seconds"] / 60
    print(
        f"branch = {minutes:.1f} min ({'meets' if minutes <= 5 else 'MISSES'} the <= 5 min target)"
    )
    print(f"LSTM MASE = {rows['lstm']['mase'] / rows['autoets']['mase']:.2f}x AutoETS's")


if __name__ == "__main__":
    main()
