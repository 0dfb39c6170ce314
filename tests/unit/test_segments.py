"""Segments: planted archetypes recovered, ids stable night to night, names deterministic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

from models.segments import (
    SegmentConfig,
    choose_k,
    fit_segments,
    match_segments,
    name_segments,
    profile_of,
    segment_features,
)
from nightshift.settings import load_settings
from nightshift.warehouse import open_warehouse, query_frame


@pytest.fixture(scope="module")
def customers(small_warehouse: Path) -> pl.DataFrame:
    with open_warehouse(load_settings(home=small_warehouse)) as con:
        frame = query_frame(con, "segments/customers.sql")
    truth = pl.read_parquet(small_warehouse / "truth" / "customers.parquet")
    return frame.join(truth.select("customer_id", "archetype"), on="customer_id")


def features_of(frame: pl.DataFrame) -> np.ndarray:
    return segment_features({c: frame[c].to_numpy() for c in frame.columns})


@pytest.fixture(scope="module")
def first_night(customers):
    return fit_segments(features_of(customers), SegmentConfig())


def test_segments_recover_the_planted_archetypes(customers, first_night) -> None:
    assert adjusted_rand_score(customers["archetype"], first_night.labels) >= 0.8
    assert first_night.k == 6
    assert first_night.silhouette > 0.3


def test_names_follow_the_planted_archetypes(customers, first_night) -> None:
    names = pl.Series([first_night.names[i] for i in first_night.labels])
    majority = (
        pl.DataFrame({"archetype": customers["archetype"], "name": names})
        .group_by("archetype", "name")
        .len()
        .sort("len", descending=True)
        .unique("archetype", keep="first")
    )
    mapping = dict(zip(majority["archetype"], majority["name"], strict=True))
    assert mapping["champion"] == "champions"
    assert mapping["wholesale"] == "big spenders"
    assert mapping["new"] == "new"
    assert mapping["lapsed"] == "hibernating"
    assert mapping["loyal"] == "loyal"
    assert mapping["occasional"] == "occasional"
    assert len(set(first_night.names.values())) == first_night.k


def test_ids_keep_their_meaning_on_the_next_night(customers, first_night) -> None:
    """Tomorrow: a different sample of customers, their numbers moved a little, rows in another
    order and another KMeans seed, so raw cluster numbers come out differently."""
    rng = np.random.default_rng(3)
    keep = np.sort(rng.choice(customers.height, size=int(customers.height * 0.85), replace=False))
    order = rng.permutation(keep.size)
    tomorrow = features_of(customers[keep[order]]) * rng.uniform(0.95, 1.05, (keep.size, 1))
    unmatched = fit_segments(tomorrow, SegmentConfig(seed=11))
    second = fit_segments(tomorrow, SegmentConfig(seed=11), previous=first_night.centroids)

    before = first_night.labels[keep[order]]
    assert np.mean(second.labels == before) >= 0.9
    assert np.mean(unmatched.labels == before) < 0.5  # without matching, the ids do move
    assert second.names == first_night.names


def test_a_new_cluster_gets_a_new_id_and_the_rest_keep_theirs() -> None:
    previous = {4: np.array([0.0, 0.0]), 9: np.array([5.0, 5.0])}
    tonight = np.array([[5.2, 4.9], [10.0, 0.0], [0.1, -0.2]])
    assert match_segments(tonight, previous, np.ones(2)) == [9, 10, 4]
    assert match_segments(tonight[:2], {}, np.ones(2)) == [0, 1]


def test_names_are_deterministic_and_distinct() -> None:
    def profile(recency, rate, units, tenure):
        return {
            "recency_days": recency, "order_rate": rate, "frequency": rate * tenure / 30,
            "monetary": 100.0, "avg_units_per_order": units, "tenure_days": tenure,
        }  # fmt: skip

    profiles = {
        0: profile(10, 3.0, 8, 500), 1: profile(15, 1.2, 5, 500), 2: profile(400, 0.5, 4, 600),
        3: profile(20, 1.0, 40, 500), 4: profile(9, 1.0, 4, 30), 5: profile(90, 0.2, 3, 500),
        6: profile(60, 0.6, 4, 400),
    }  # fmt: skip
    overall = profile(30, 0.8, 5, 450)
    names = name_segments(profiles, overall)
    assert names == name_segments(dict(reversed(profiles.items())), overall)
    assert names == {
        0: "champions", 1: "loyal", 2: "hibernating", 3: "big spenders", 4: "new",
        5: "occasional", 6: "regulars",
    }  # fmt: skip
    # no bulk buyers in the shop: nobody is called a big spender
    calm = {i: {**p, "avg_units_per_order": 5.0} for i, p in profiles.items()}
    assert "big spenders" not in name_segments(calm, overall).values()


def test_silhouette_chooses_the_planted_number_of_groups() -> None:
    rng = np.random.default_rng(0)
    centers = np.exp(rng.uniform(0, 6, (4, len(profile_of(np.ones((1, 6))))))) - 1
    blobs = np.concatenate([c * np.exp(rng.normal(0, 0.05, (300, c.size))) for c in centers])
    k, scores = choose_k(blobs, SegmentConfig(k=0, k_range=(2, 7), silhouette_sample=800))
    assert k == 4
    assert scores[4] == max(scores.values())
