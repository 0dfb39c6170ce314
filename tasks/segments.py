"""The segments branch: read customer RFM features, fit segments matched to the last published
ones, gate against random labels, log a child MLflow run, and build
`marts.customer_segments` and `marts.segment_profiles`.

IO only: the modelling is `models.segments`.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from models.segments import (
    FEATURES,
    SegmentConfig,
    assign_to_centroids,
    fit_segments,
    profile_of,
    random_label_silhouette,
    segment_features,
)
from nightshift.runlog import task_logger
from nightshift.settings import Settings
from nightshift.warehouse import (
    connect,
    open_warehouse,
    query_frame,
    run_sql_over_frames,
    table_exists,
)
from tasks.branch import BranchResult
from tasks.publish import previous_marts
from tasks.runs import RunContext
from tasks.tracking import (
    child_run,
    log_flat,
    log_sklearn_model,
    tracking_client,
)

MARTS = ["customer_segments", "segment_profiles"]
REGISTERED_MODEL = "nightshift-segments"


def segment_config(settings: Settings) -> SegmentConfig:
    return SegmentConfig(
        k=settings.segments_k,
        k_range=(settings.segments_k_min, settings.segments_k_max),
        seed=settings.segments_seed,
    )


def previous_segments(settings: Settings) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """Centroids and names of the last *published* segments (what analysts saw), if any."""
    if (previous := previous_marts(settings)) is None:
        return {}, {}
    con = connect(previous, settings, read_only=True)
    try:
        if not table_exists(con, "main.segment_profiles"):
            return {}, {}
        frame = query_frame(con, "segments/previous_centroids.sql")
    finally:
        con.close()
    centroids, names = {}, {}
    for row in frame.iter_rows(named=True):
        centroid = np.asarray(row["centroid"] or [], dtype=np.float64)
        if centroid.size == len(FEATURES):  # a centroid from another feature set is not comparable
            centroids[int(row["segment_id"])] = centroid
            names[int(row["segment_id"])] = row["segment_name"]
    return centroids, names


def profile_rows(
    customers: pl.DataFrame,
    features: np.ndarray,
    labels: np.ndarray,
    names: dict[int, str],
    centroids: dict[int, np.ndarray],
) -> pl.DataFrame:
    """Size, share and median profile of each segment present tonight."""
    rows = []
    for segment in sorted(set(labels.tolist())):
        members = labels == segment
        part = customers.filter(pl.Series(members))
        profile = profile_of(features[members])
        rows.append(
            {
                "segment_id": segment,
                "segment_name": names[segment],
                "customers": int(members.sum()),
                "share": float(members.mean()),
                **profile,
                "avg_order_value": float(part["avg_order_value"].median()),
                "return_rate": float(part["return_rate"].median()),
                "centroid": centroids[segment].tolist(),
            }
        )
    return pl.DataFrame(rows)


def scatter_figure(pca: np.ndarray, labels: np.ndarray, names: dict[int, str], max_points=20_000):
    """The customers on the first two principal components, coloured by segment."""
    # matplotlib's object API, not pyplot: no global figure state, safe in any thread
    from matplotlib.figure import Figure

    rng = np.random.default_rng(0)
    shown = rng.choice(labels.size, size=min(max_points, labels.size), replace=False)
    figure = Figure(figsize=(7, 5.5))
    ax = figure.subplots()
    for segment in sorted(set(labels.tolist())):
        points = shown[labels[shown] == segment]
        ax.scatter(
            pca[points, 0], pca[points, 1], s=4, alpha=0.5, label=f"{segment} {names[segment]}"
        )
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(markerscale=4, fontsize=8)
    figure.tight_layout()
    return figure


@task(name="segments", cache_policy=NO_CACHE)
def run_segments(settings: Settings, run: RunContext) -> BranchResult:
    """Segment every customer with a purchase by `run.as_of`; build both segment marts."""
    logger = task_logger(__name__)
    config = segment_config(settings)
    with open_warehouse(settings) as con:
        customers = query_frame(con, "segments/customers.sql")
    features = segment_features({c: customers[c].to_numpy() for c in customers.columns})
    previous, previous_names = previous_segments(settings)
    with child_run(settings, run, "segments") as child:
        digest = hashlib.sha256(features.round(6).tobytes()).hexdigest()
        log_flat(
            settings,
            child,
            params={
                "k": config.k or "silhouette",
                "k_range": config.k_range,
                "features": ",".join(FEATURES),
                "seed": config.seed,
                "n_customers": features.shape[0],
                "previous_segments": len(previous),
                "gate_margin": settings.segments_gate_margin,
            },
            tags={"nightshift.input_digest": digest},
        )
        result = fit_segments(features, config, previous)
        baseline = random_label_silhouette(features, result.k, config)
        promoted = bool(result.silhouette >= baseline + settings.segments_gate_margin)
        gate = (
            f"silhouette {result.silhouette:.3f} vs random labels {baseline:.3f} "
            f"(needs >= +{settings.segments_gate_margin})"
        )
        labels, names, centroids = result.labels, result.names, result.centroids
        if not promoted and previous:
            scale = result.pipeline.named_steps["scale"].scale_
            labels = assign_to_centroids(features, previous, scale)
            names, centroids = previous_names, previous
        sizes = {f"size_{i}": float((labels == i).sum()) for i in sorted(set(labels.tolist()))}
        log_flat(
            settings,
            child,
            metrics={
                "silhouette": result.silhouette,
                "baseline_silhouette": baseline,
                "inertia": result.inertia,
                "k": float(result.k),
                "promoted": float(promoted),
                **{f"silhouette_k{k}": v for k, v in result.k_scores.items()},
                **sizes,
            },
            tags={"nightshift.gate": gate, "nightshift.segment_names": str(names)},
        )
        figure = scatter_figure(result.pca, labels, names)
        tracking_client(settings).log_figure(child, figure, "segments_pca.png")
        version = log_sklearn_model(
            settings, child, result.pipeline, features[:5], REGISTERED_MODEL
        )
        if promoted:
            model = f"{REGISTERED_MODEL}/{version}"
        elif previous:
            model = "previous_centroids"
        else:
            model = f"{REGISTERED_MODEL}/{version} (below gate, nothing to fall back to)"
        segment_rows = customers.select("customer_id", "recency_days", "frequency", "monetary").with_columns(
            segment_id=pl.Series(labels),
            segment_name=pl.Series([names[i] for i in labels.tolist()]),
            pca_x=pl.Series(result.pca[:, 0]),
            pca_y=pl.Series(result.pca[:, 1]),
        )  # fmt: skip
        profiles = profile_rows(customers, features, labels, names, centroids)
        lineage = run.lineage(child)
        frames = {"customer_segments_rows": segment_rows, "segment_profiles_rows": profiles}
        run_sql_over_frames(
            settings,
            frames,
            {
                "marts/customer_segments.sql": lineage,
                "marts/segment_profiles.sql": {**lineage, "model": model},
            },
        )
    logger.info(
        "segments: %s; %d customers in %d segments (%s)",
        gate, labels.size, len(sizes), ", ".join(sorted(set(names.values()))),
    )  # fmt: skip
    return BranchResult(
        name="segments",
        marts=MARTS,
        model=model,
        metrics={"silhouette": result.silhouette, "inertia": result.inertia},
        baseline_metrics={"silhouette": baseline},
        promoted=promoted,
        mlflow_run_id=child,
        gate=gate,
        registered_name=REGISTERED_MODEL,
        registered_version=version,
    )
