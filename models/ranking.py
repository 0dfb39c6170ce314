"""Ranking evaluation for recommenders: Recall, NDCG, MAP at k, catalogue coverage, and the
popularity baseline every model is compared against. Pure numpy; no IO.

Relevant items are given per user as a CSR pair (`indptr`, `indices`): the items of user
`u` are `indices[indptr[u]:indptr[u + 1]]`. Recommendations are an `(n_users, k)` array of
item indices, padded with -1 where fewer than k exist.
"""

from __future__ import annotations

import numpy as np


def csr_from_pairs(
    users: np.ndarray, items: np.ndarray, n_users: int
) -> tuple[np.ndarray, np.ndarray]:
    """Group (user, item) pairs into CSR form, items de-duplicated and sorted per user."""
    order = np.lexsort((items, users))
    users, items = users[order], items[order]
    keep = np.ones(users.size, dtype=bool)
    keep[1:] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
    users, items = users[keep], items[keep]
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.add.at(indptr, users + 1, 1)
    return np.cumsum(indptr), items.astype(np.int64)


def ranking_metrics(
    recommended: np.ndarray, relevant: tuple[np.ndarray, np.ndarray], n_items: int
) -> dict[str, float]:
    """Mean Recall@k, NDCG@k and MAP@k over users with at least one relevant item, and the
    share of the catalogue recommended to anyone (coverage).

    Recall@k is hits / min(k, |relevant|), so a perfect list scores 1 even for users with more
    relevant items than slots. NDCG uses binary gains; MAP@k averages precision at each hit
    over min(k, |relevant|).
    """
    indptr, indices = relevant
    n_users, k = recommended.shape
    counts = np.diff(indptr)[:n_users]
    users = np.flatnonzero(counts > 0)
    if users.size == 0:
        return {"recall": 0.0, "ndcg": 0.0, "map": 0.0, "coverage": 0.0, "users": 0.0}
    hits = np.zeros((users.size, k), dtype=bool)
    for row, user in enumerate(users):
        truth = indices[indptr[user] : indptr[user + 1]]
        hits[row] = np.isin(recommended[user], truth)
    ideal = np.minimum(counts[users], k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discounts).sum(axis=1)
    idcg = np.cumsum(discounts)[ideal - 1]
    precision_at_hit = np.cumsum(hits, axis=1) / np.arange(1, k + 1) * hits
    recommended_items = recommended[recommended >= 0]
    return {
        "recall": float((hits.sum(axis=1) / ideal).mean()),
        "ndcg": float((dcg / idcg).mean()),
        "map": float((precision_at_hit.sum(axis=1) / ideal).mean()),
        "coverage": float(np.unique(recommended_items).size / n_items),
        "users": float(users.size),
    }


def popularity_scores(items: np.ndarray, weights: np.ndarray | None, n_items: int) -> np.ndarray:
    """Item popularity in the training data (summed weights), the baseline's score."""
    return np.bincount(items, weights=weights, minlength=n_items).astype(np.float64)


def top_k_excluding(
    scores: np.ndarray, k: int, exclude: tuple[np.ndarray, np.ndarray] | None, users: np.ndarray
) -> np.ndarray:
    """Top-k item indices per row of `scores` (rows are `users`), skipping excluded items.

    Rows with fewer than k allowed items are padded with -1.
    """
    scores = scores.astype(np.float64, copy=True)
    if exclude is not None:
        indptr, indices = exclude
        for row, user in enumerate(users):
            scores[row, indices[indptr[user] : indptr[user + 1]]] = -np.inf
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    return np.where(np.isfinite(np.take_along_axis(scores, top, axis=1)), top, -1)


def recommend_popular(
    popularity: np.ndarray, users: np.ndarray, k: int, exclude: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray:
    """The popularity baseline's top-k for each user, without the user's excluded items."""
    scores = np.broadcast_to(popularity, (users.size, popularity.size))
    return top_k_excluding(scores, k, exclude, users)
