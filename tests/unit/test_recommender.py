"""The MF recommender against planted ground truth and the popularity baseline."""

from __future__ import annotations

import numpy as np
import pytest

from models.ranking import csr_from_pairs, popularity_scores, ranking_metrics, recommend_popular
from models.recommender import RecommenderConfig, fit_recommender, recommend

N_USERS, N_ITEMS, DIM = 1_500, 300, 8
CONFIG = RecommenderConfig(epochs=30, batch_size=2048)


@pytest.fixture(scope="module")
def planted() -> dict[str, np.ndarray]:
    """Users pick 30 items each from softmax(2 * u.v + popularity); 5 per user are held out."""
    rng = np.random.default_rng(0)
    u = rng.normal(size=(N_USERS, DIM))
    v = rng.normal(size=(N_ITEMS, DIM))
    popularity = -0.8 * np.log(rng.permutation(N_ITEMS) + 1)
    logits = 2.0 * u @ v.T / np.sqrt(DIM) + popularity
    picks = np.argsort(-(logits + rng.gumbel(size=logits.shape)), axis=1)[:, :30]
    users = np.repeat(np.arange(N_USERS), 30)
    items = picks.ravel()
    test = np.tile(np.arange(30) >= 25, N_USERS)
    return {"u": u, "v": v, "users": users, "items": items, "test": test, "logits": logits}


@pytest.fixture(scope="module")
def fitted(planted):
    train = ~planted["test"]
    users, items = planted["users"][train], planted["items"][train]
    held_out = csr_from_pairs(planted["users"][~train], planted["items"][~train], N_USERS)
    model = fit_recommender(
        users, items, np.ones(users.size), N_USERS, N_ITEMS, CONFIG, validation=held_out
    )
    return model, held_out, csr_from_pairs(users, items, N_USERS), (users, items)


def test_mf_beats_popularity_by_a_wide_margin(fitted) -> None:
    model, held_out, seen, (users, items) = fitted
    everyone = np.arange(N_USERS)
    mf_top, _ = recommend(model, everyone, 20, seen)
    pop_top = recommend_popular(popularity_scores(items, None, N_ITEMS), everyone, 20, seen)
    mf = ranking_metrics(mf_top, held_out, N_ITEMS)
    pop = ranking_metrics(pop_top, held_out, N_ITEMS)
    assert mf["recall"] >= 2 * pop["recall"]
    assert mf["ndcg"] > 1.5 * pop["ndcg"]
    assert mf["coverage"] > pop["coverage"]


def test_scores_follow_the_planted_affinity(fitted, planted) -> None:
    model, *_ = fitted
    learned = model.scores(np.arange(200))
    truth = planted["logits"][:200]
    correlation = np.mean([np.corrcoef(learned[r], truth[r])[0, 1] for r in range(200)])
    assert correlation > 0.6


def test_recommendations_skip_excluded_and_disallowed_items(fitted) -> None:
    model, _, seen, _ = fitted
    allowed = np.ones(N_ITEMS, dtype=bool)
    allowed[:50] = False
    users = np.arange(100)
    top, scores = recommend(model, users, 20, seen, allowed_items=allowed)
    indptr, indices = seen
    for row, user in enumerate(users):
        assert not set(top[row]) & set(indices[indptr[user] : indptr[user + 1]])
    assert (top >= 50).all()
    assert (np.diff(scores, axis=1) <= 1e-9).all()  # best first


def test_training_is_deterministic_for_a_seed(planted) -> None:
    users, items = planted["users"][:3000], planted["items"][:3000]
    config = RecommenderConfig(factors=8, epochs=2, batch_size=512, negatives=32)
    a = fit_recommender(users, items, np.ones(users.size), N_USERS, N_ITEMS, config)
    b = fit_recommender(users, items, np.ones(users.size), N_USERS, N_ITEMS, config)
    assert np.array_equal(a.item_factors, b.item_factors)
    c = fit_recommender(
        users,
        items,
        np.ones(users.size),
        N_USERS,
        N_ITEMS,
        RecommenderConfig(**{**config.__dict__, "seed": 8}),
    )
    assert not np.array_equal(a.item_factors, c.item_factors)


def test_early_stopping_keeps_the_best_epoch(fitted) -> None:
    model, *_ = fitted
    ndcg = [record["val_ndcg"] for record in model.history]
    assert model.best_epoch == int(np.argmax(ndcg)) + 1
    assert len(model.history) < CONFIG.epochs or model.best_epoch == CONFIG.epochs


def test_metrics_on_a_hand_made_example() -> None:
    relevant = csr_from_pairs(np.array([0, 0, 1]), np.array([3, 5, 2]), 3)
    recommended = np.array([[3, 1, 5], [0, 1, 4], [1, 2, 3]])
    metrics = ranking_metrics(recommended, relevant, n_items=6)
    assert metrics["users"] == 2  # user 2 has nothing relevant and is not averaged
    assert metrics["recall"] == pytest.approx((2 / 2 + 0) / 2)
    dcg0 = 1 + 1 / np.log2(4)
    assert metrics["ndcg"] == pytest.approx((dcg0 / (1 + 1 / np.log2(3)) + 0) / 2)
    assert metrics["map"] == pytest.approx(((1 + 2 / 3) / 2 + 0) / 2)
    assert metrics["coverage"] == pytest.approx(6 / 6)
