"""Customer segments: KMeans over log-scaled RFM and behaviour, with ids that keep their
meaning night after night and names a merchandiser can read.

Why these choices:
- **Features**: recency, order rate (orders per 30 days of tenure), frequency, monetary,
  units per order and tenure. Order rate separates a champion from a loyal or occasional
  customer independently of how long they have been around; tenure finds the new ones;
  recency the lapsed; units per order the wholesale buyers. Counts and money are heavy-tailed,
  so every feature is `log1p`-transformed, then standardised so no unit dominates the
  Euclidean distance KMeans minimises.
- **k**: from settings (six by default: the number of names in `NAME_RULES`), or chosen by the
  silhouette on a sample within a range when the setting is 0.
- **Stable ids**: KMeans numbers clusters arbitrarily. Tonight's centroids (in the log-feature
  space, which does not depend on tonight's scaler) are matched to the previous run's by
  Hungarian assignment on distance, so `segment_id` 3 is the same kind of customer every
  morning; a segment with no predecessor gets a new id.
- **Names** come from the centroids' ranks by rules kept in one place (`NAME_RULES`), so
  they are deterministic for a given set of centroids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

# Columns of the feature matrix, in order; `order_rate` is derived by `segment_features`.
FEATURES = (
    "recency_days",
    "order_rate",
    "frequency",
    "monetary",
    "avg_units_per_order",
    "tenure_days",
)


@dataclass(frozen=True)
class SegmentConfig:
    k: int = 6  # 0: choose by silhouette within k_range
    k_range: tuple[int, int] = (3, 8)
    silhouette_sample: int = 5_000
    n_init: int = 10
    seed: int = 7


@dataclass(frozen=True)
class Segmentation:
    pipeline: Pipeline  # log1p -> scale -> KMeans, as fitted tonight
    labels: np.ndarray  # stable segment id per customer
    centroids: dict[int, np.ndarray]  # stable id -> centroid in log1p feature space
    names: dict[int, str]
    pca: np.ndarray  # (n, 2) coordinates for plotting
    silhouette: float
    inertia: float
    k: int
    k_scores: dict[int, float]  # silhouette per k tried (just k when fixed)


def segment_features(columns: dict[str, np.ndarray]) -> np.ndarray:
    """The (n, len(FEATURES)) matrix from customer_rfm columns; negatives (net refunds) are
    clipped to zero so `log1p` is defined."""
    frequency = np.asarray(columns["frequency"], dtype=np.float64)
    tenure = np.asarray(columns["tenure_days"], dtype=np.float64)
    derived = {"order_rate": frequency * 30.0 / (tenure + 30.0)}
    matrix = np.column_stack(
        [derived[name] if name in derived else columns[name] for name in FEATURES]
    ).astype(np.float64)
    return np.clip(np.nan_to_num(matrix, nan=0.0), 0.0, None)


def segment_pipeline(k: int, config: SegmentConfig) -> Pipeline:
    return Pipeline(
        [
            ("log", FunctionTransformer(np.log1p, inverse_func=np.expm1)),
            ("scale", StandardScaler()),
            ("kmeans", KMeans(n_clusters=k, n_init=config.n_init, random_state=config.seed)),
        ]
    )


def choose_k(features: np.ndarray, config: SegmentConfig) -> tuple[int, dict[int, float]]:
    """The k in `config.k_range` with the best silhouette on a seeded sample."""
    rng = np.random.default_rng(config.seed)
    size = min(config.silhouette_sample, features.shape[0])
    sample = features[rng.choice(features.shape[0], size=size, replace=False)]
    scores: dict[int, float] = {}
    low, high = config.k_range
    for k in range(low, min(high, size - 1) + 1):
        pipeline = segment_pipeline(k, config)
        labels = pipeline.fit_predict(sample)
        scores[k] = float(silhouette_score(pipeline[:-1].transform(sample), labels))
    if not scores:
        raise ValueError(f"too few customers ({features.shape[0]}) to choose k")
    return max(scores, key=lambda k: (scores[k], -k)), scores


def match_segments(
    centroids: np.ndarray, previous: dict[int, np.ndarray], scale: np.ndarray
) -> list[int]:
    """Stable ids for tonight's clusters: Hungarian assignment to the previous centroids on
    scaled distance; clusters left over (k grew) get ids after the largest previous one."""
    ids = [-1] * len(centroids)
    if previous:
        old_ids = sorted(previous)
        old = np.stack([previous[i] for i in old_ids])
        cost = np.linalg.norm((centroids[:, None, :] - old[None, :, :]) / scale, axis=-1)
        rows, cols = linear_sum_assignment(cost)
        for row, col in zip(rows, cols, strict=True):
            ids[row] = old_ids[col]
    next_id = max(previous, default=-1) + 1
    for row in range(len(centroids)):
        if ids[row] < 0:
            ids[row] = next_id
            next_id += 1
    return ids


# Naming rules, applied in order: each names the not-yet-named segment that scores highest,
# if that segment passes the rule's condition. Profiles are medians in natural units.
# Leftover segments are called "regulars" (then "segment N" once that name is taken).
Profile = dict[str, float]
NAME_RULES: tuple[tuple[str, Callable[[Profile], float], Callable[[Profile], bool]], ...] = (
    ("new", lambda p: -p["tenure_days"], lambda p: p["tenure_days"] < 120),
    ("hibernating", lambda p: p["recency_days"], lambda p: p["recency_days"] > 180),
    ("big spenders", lambda p: p["avg_units_per_order"], lambda p: True),
    ("champions", lambda p: p["order_rate"], lambda p: True),
    ("at risk", lambda p: p["recency_days"], lambda p: p["recency_days"] > 120),
    ("loyal", lambda p: p["order_rate"], lambda p: True),
    ("occasional", lambda p: -p["order_rate"], lambda p: True),
)


def name_segments(profiles: dict[int, Profile], overall: Profile) -> dict[int, str]:
    """A distinct name per segment from `NAME_RULES`. 'big spenders' needs units per order
    at least twice the overall median, so a shop without bulk buyers does not get one."""
    names: dict[int, str] = {}
    for name, score, condition in NAME_RULES:
        left = [i for i in sorted(profiles) if i not in names]
        if not left:
            break
        best = max(left, key=lambda i: (score(profiles[i]), -i))
        bulk_ok = (
            name != "big spenders"
            or profiles[best]["avg_units_per_order"] >= 2 * overall["avg_units_per_order"]
        )
        if condition(profiles[best]) and bulk_ok:
            names[best] = name
    for i in sorted(profiles):
        if i not in names:
            names[i] = "regulars" if "regulars" not in names.values() else f"segment {i}"
    return names


def profile_of(features: np.ndarray) -> Profile:
    """Medians of each feature in natural units."""
    return {name: float(np.median(features[:, j])) for j, name in enumerate(FEATURES)}


def fit_segments(
    features: np.ndarray,
    config: SegmentConfig,
    previous: dict[int, np.ndarray] | None = None,
) -> Segmentation:
    """Fit tonight's segments, give them stable ids and names, and project to 2-D."""
    if features.shape[0] < 2:
        raise ValueError(f"need at least 2 customers to segment, got {features.shape[0]}")
    if config.k:
        k, k_scores = min(config.k, features.shape[0]), {}
    else:
        k, k_scores = choose_k(features, config)
    pipeline = segment_pipeline(k, config)
    raw_labels = pipeline.fit_predict(features)
    scaled = pipeline[:-1].transform(features)
    scaler = pipeline.named_steps["scale"]
    log_centroids = scaler.inverse_transform(pipeline.named_steps["kmeans"].cluster_centers_)
    ids = match_segments(log_centroids, previous or {}, scaler.scale_)
    labels = np.asarray(ids)[raw_labels]
    profiles = {ids[c]: profile_of(features[raw_labels == c]) for c in range(k)}
    rng = np.random.default_rng(config.seed)
    size = min(config.silhouette_sample, features.shape[0])
    sample = rng.choice(features.shape[0], size=size, replace=False)
    silhouette = (
        float(silhouette_score(scaled[sample], raw_labels[sample]))
        if 1 < len(np.unique(raw_labels[sample])) < size
        else float("nan")
    )
    k_scores = k_scores or {k: silhouette}
    pca = PCA(n_components=2, random_state=config.seed).fit_transform(scaled)
    return Segmentation(
        pipeline=pipeline,
        labels=labels,
        centroids={ids[c]: log_centroids[c] for c in range(k)},
        names=name_segments(profiles, profile_of(features)),
        pca=pca,
        silhouette=silhouette,
        inertia=float(pipeline.named_steps["kmeans"].inertia_),
        k=k,
        k_scores=k_scores,
    )


def random_label_silhouette(features: np.ndarray, k: int, config: SegmentConfig) -> float:
    """The gate's baseline: the silhouette of random labels on the same scaled sample (about
    0). A clustering that does not clearly beat it has found no structure."""
    pipeline = segment_pipeline(k, config)
    scaled = pipeline[:-1].fit_transform(features)
    rng = np.random.default_rng(config.seed)
    size = min(config.silhouette_sample, features.shape[0])
    sample = rng.choice(features.shape[0], size=size, replace=False)
    labels = rng.integers(0, k, size)
    if not 1 < len(np.unique(labels)) < size:
        return float("nan")
    return float(silhouette_score(scaled[sample], labels))


def assign_to_centroids(
    features: np.ndarray, centroids: dict[int, np.ndarray], scale: np.ndarray
) -> np.ndarray:
    """Each customer's nearest centroid (log1p space, distances scaled per feature): the
    fallback when tonight's clustering fails its gate."""
    ids = sorted(centroids)
    logged = np.log1p(features) / scale
    distance = np.column_stack(  # one centroid at a time: n x k memory, not n x k x features
        [np.linalg.norm(logged - centroids[i] / scale, axis=1) for i in ids]
    )
    return np.asarray(ids)[np.argmin(distance, axis=1)]
