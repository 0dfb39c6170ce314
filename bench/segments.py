"""Segments benchmark: 1M customers, KMeans (what the branch uses) vs MiniBatchKMeans.

The customers are the `small` synthetic shop's (5,000 with planted archetypes, through the
real ingest, feature SQL and `segment_features`), resampled to `--customers` rows with 5%
log-normal jitter per feature, so the population has the shop's shape and every row keeps
its planted archetype for the adjusted Rand index.

Both fit the branch's pipeline (log1p -> standard scaling -> k=6) on all rows:
- KMeans: scikit-learn's Lloyd, n_init=10 (the branch's setting) and n_init=1;
- MiniBatchKMeans: batch 4,096, n_init=3.
Reported: fit seconds, inertia relative to the best, silhouette on a 20k sample, ARI against
the planted archetypes, peak RSS (each in its own process).

Usage: python bench/segments.py [--customers 1000000] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import ROOT, SYNTHETIC_END, prepare_warehouse, run_stage


def population(workdir: Path, customers: int, seed: int = 0):
    import polars as pl

    from models.segments import segment_features
    from nightshift.settings import load_settings
    from nightshift.warehouse import open_warehouse, query_frame

    with open_warehouse(load_settings(home=workdir), read_only=True) as con:
        frame = query_frame(con, "segments/customers.sql")
    truth = pl.read_parquet(workdir / "truth" / "customers.parquet")
    frame = frame.join(truth.select("customer_id", "archetype"), on="customer_id")
    features = segment_features({c: frame[c].to_numpy() for c in frame.columns})
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, features.shape[0], customers)
    jitter = np.exp(rng.normal(0, 0.05, (customers, features.shape[1])))
    return features[rows] * jitter, frame["archetype"].to_numpy()[rows]


def stage(name: str, workdir: Path, customers: int) -> dict:
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.metrics import adjusted_rand_score, silhouette_score

    from models.segments import SegmentConfig, segment_pipeline

    features, truth = population(workdir, customers)
    pipeline = segment_pipeline(6, SegmentConfig())
    scaled = pipeline[:-1].fit_transform(features)
    estimator = {
        "kmeans_n10": KMeans(6, n_init=10, random_state=7),
        "kmeans_n1": KMeans(6, n_init=1, random_state=7),
        "minibatch": MiniBatchKMeans(6, batch_size=4096, n_init=3, random_state=7),
    }[name]
    start = time.perf_counter()
    labels = estimator.fit_predict(scaled)
    seconds = time.perf_counter() - start
    rng = np.random.default_rng(1)
    sample = rng.choice(customers, size=min(20_000, customers), replace=False)
    inertia = float(((scaled - estimator.cluster_centers_[labels]) ** 2).sum())
    return {
        "seconds": seconds,
        "inertia": inertia,
        "silhouette": float(silhouette_score(scaled[sample], labels[sample])),
        "ari": float(adjusted_rand_score(truth, labels)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        sys.path.insert(0, str(ROOT))
        if args.stage == "prepare":
            result = prepare_warehouse(args.workdir, "small", None)
        else:
            result = stage(args.stage, args.workdir, args.customers)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="nightshift-bench-segments-"))
    common = ["--workdir", str(workdir), "--customers", str(args.customers)]
    try:
        if not (workdir / "warehouse.duckdb").exists():
            run_stage(__file__, ["--stage", "prepare", *common])
        runs = {
            "KMeans, n_init=10 (branch)": run_stage(__file__, ["--stage", "kmeans_n10", *common]),
            "KMeans, n_init=1": run_stage(__file__, ["--stage", "kmeans_n1", *common]),
            "MiniBatchKMeans, n_init=3": run_stage(__file__, ["--stage", "minibatch", *common]),
        }
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    best = min(run["inertia"] for run in runs.values())
    print(
        f"{args.customers:,} customers resampled from the small shop (as of {SYNTHETIC_END}), "
        f"6 features, k=6"
    )
    print(f"{'model':<30}{'fit s':>8}{'inertia/best':>14}{'silhouette':>12}{'ARI':>7}{'RSS MB':>8}")
    for name, run in runs.items():
        print(
            f"{name:<30}{run['seconds']:>8.1f}{run['inertia'] / best:>14.4f}"
            f"{run['silhouette']:>12.3f}{run['ari']:>7.3f}{run['peak_rss_mb']:>8,.0f}"
        )
    branch, mini = runs["KMeans, n_init=10 (branch)"], runs["MiniBatchKMeans, n_init=3"]
    print(
        f"MiniBatchKMeans / KMeans(n_init=10) fit time: {mini['seconds'] / branch['seconds']:.2f}x, "
        f"inertia {mini['inertia'] / branch['inertia'] - 1:+.2%}, ARI {mini['ari'] - branch['ari']:+.3f}"
    )


if __name__ == "__main__":
    main()
