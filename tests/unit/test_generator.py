"""The synthetic shop is deterministic and carries the structure it claims to plant."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nightshift.generator import (
    PROFILES,
    REASONS,
    WEEKLY_PROFILE,
    Profile,
    build_world,
    generate_shop,
    plant_dirty_rows,
)
from tests.conftest import TINY_END, TINY_SEED


def digest_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_and_end_give_identical_files(tmp_path: Path, tiny_shop: Path) -> None:
    generate_shop("tiny", tmp_path / "landing", seed=TINY_SEED, end=TINY_END)
    assert digest_tree(tmp_path / "landing") == digest_tree(tiny_shop / "landing")
    assert digest_tree(tmp_path / "truth") == digest_tree(tiny_shop / "truth")


def test_a_different_seed_gives_a_different_shop(tmp_path: Path, tiny_shop: Path) -> None:
    generate_shop("tiny", tmp_path / "landing", seed=TINY_SEED + 1, end=TINY_END)
    assert digest_tree(tmp_path / "landing") != digest_tree(tiny_shop / "landing")


def test_data_ends_on_the_end_date_and_spans_the_profile(tiny_shop: Path) -> None:
    orders = pl.read_csv(tiny_shop / "landing" / "orders" / "*.csv", infer_schema=False)
    stamps = orders["ordered_at"].str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False).drop_nulls()
    clean = stamps.filter(stamps.dt.year() < 2060)
    assert clean.max().date() == TINY_END
    assert (TINY_END - clean.min().date()).days < PROFILES["tiny"].days
    assert 6_000 < orders.height < 11_000  # the profile's ~8k order lines


def sales(shop: Path) -> pl.DataFrame:
    orders = pl.read_csv(shop / "landing" / "orders" / "*.csv", infer_schema=False)
    return orders.with_columns(
        pl.col("quantity").cast(pl.Int64, strict=False),
        pl.col("unit_price").cast(pl.Float64, strict=False),
        pl.col("ordered_at").str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False),
    ).filter(
        pl.col("quantity").is_not_null()
        & (pl.col("quantity") > 0)
        & pl.col("ordered_at").is_not_null()
        & pl.col("sku").str.starts_with("SKU")
    )


def test_weekly_seasonality_is_planted(tiny_shop: Path) -> None:
    lines = sales(tiny_shop).with_columns(pl.col("ordered_at").dt.weekday().alias("dow"))
    per_dow = lines.group_by("dow").len().sort("dow")["len"].to_numpy().astype(float)
    per_dow /= per_dow.mean()
    planted = WEEKLY_PROFILE / WEEKLY_PROFILE.mean()
    assert np.corrcoef(per_dow, planted)[0, 1] > 0.8
    assert per_dow[5:].mean() < 0.85 * per_dow[:5].mean()  # weekends are quieter


PRICED = Profile("priced", customers=1_500, skus=80, days=365, lines_target=60_000)


def test_demand_follows_the_planted_multiplier_and_elasticity(tmp_path: Path) -> None:
    """Within a SKU, expected lines scale with m_i(t), so price moves reveal elasticity."""
    world = build_world(PRICED, seed=3, end=date(2024, 6, 30))
    generate_shop(PRICED, tmp_path / "landing", seed=3, end=date(2024, 6, 30), fmt="parquet")
    truth = pl.read_parquet(tmp_path / "truth" / "prices.parquet")
    orders = pl.read_parquet(tmp_path / "landing" / "orders" / "*.parquet").with_columns(
        pl.col("quantity").cast(pl.Int64, strict=False),
        pl.col("ordered_at")
        .str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False)
        .dt.date()
        .alias("date"),
    )
    daily = (
        orders.filter(pl.col("quantity") > 0).group_by("sku", "date").agg(pl.len().alias("lines"))
    )
    base = pl.DataFrame(
        {"sku": world.sku_ids, "base": world.base_price, "elasticity": world.elasticity}
    )
    panel = (
        truth.join(daily, on=["sku", "date"], how="left")
        .join(base, on="sku")
        .with_columns(
            pl.col("lines").fill_null(0), (pl.col("price") / pl.col("base")).round(2).alias("rel")
        )
        .filter(pl.col("demand_multiplier") > 0)
    )
    levels = panel.group_by("sku", "rel").agg(
        pl.col("lines").mean().alias("m"),
        pl.col("demand_multiplier").mean().alias("dm"),
        pl.len().alias("n"),
    )
    levels = levels.join(
        levels.group_by("sku").agg(
            pl.col("m").mean().alias("m_bar"), pl.col("dm").mean().alias("dm_bar")
        ),
        on="sku",
    ).filter((pl.col("m") > 0) & (pl.col("n") >= 14))
    x = np.log((levels["dm"] / levels["dm_bar"]).to_numpy())
    y = np.log((levels["m"] / levels["m_bar"]).to_numpy())
    slope = np.polyfit(x, y, 1)[0]
    assert 0.7 < slope < 1.2  # demand is proportional to the planted multiplier

    estimates, planted = [], []
    for _, group in levels.join(base, on="sku").group_by("sku"):
        if group.height >= 4:
            estimates.append(
                np.polyfit(np.log(group["rel"].to_numpy()), np.log(group["m"].to_numpy()), 1)[0]
            )
            planted.append(group["elasticity"][0])
    assert len(estimates) >= 30
    assert abs(np.median(estimates) - np.median(planted)) < 0.5  # price moves recover elasticity


def test_inventory_stocks_a_case_of_every_sku_but_the_planted_stock_outs(tiny_shop: Path) -> None:
    inventory = pl.read_csv(tiny_shop / "landing" / "inventory" / "*.csv", infer_schema=False)
    on_hand = (
        inventory.filter(pl.col("sku").str.starts_with("SKU"))
        .unique("sku", keep="first")
        .get_column("on_hand")
        .cast(pl.Int64, strict=False)
        .drop_nulls()
    )
    out_of_stock = (on_hand == 0).mean()
    assert 0.01 <= out_of_stock <= 0.12  # about 5% planted; slow sellers still hold a case
    assert on_hand.filter(on_hand > 0).min() >= 1
    assert on_hand.filter(on_hand > 0).median() >= 3


def test_customers_buy_items_their_factors_favour(tiny_shop: Path) -> None:
    users = pl.read_parquet(tiny_shop / "truth" / "user_factors.parquet")
    items = pl.read_parquet(tiny_shop / "truth" / "item_factors.parquet")
    u = dict(zip(users["customer_id"], users["factors"].to_list(), strict=True))
    v = dict(zip(items["sku"], items["factors"].to_list(), strict=True))
    bought = sales(tiny_shop).filter(pl.col("customer_id").is_not_null())
    rng = np.random.default_rng(0)
    bought_scores = [
        np.dot(u[c], v[s]) for c, s in zip(bought["customer_id"], bought["sku"], strict=True)
    ]
    skus = list(v)
    random_scores = [np.dot(u[c], v[skus[rng.integers(len(skus))]]) for c in bought["customer_id"]]
    assert np.mean(bought_scores) > np.mean(random_scores) + 0.3


def test_truth_records_archetypes_and_dirty_counts(tiny_shop: Path) -> None:
    customers = pl.read_parquet(tiny_shop / "truth" / "customers.parquet")
    assert set(customers["archetype"]) == {
        "champion",
        "loyal",
        "wholesale",
        "occasional",
        "new",
        "lapsed",
    }
    counts = json.loads((tiny_shop / "truth" / "dirty_counts.json").read_text())
    for table, reasons in REASONS.items():
        assert set(counts[table]) == {*reasons, "duplicate"}
        assert all(n > 0 for n in counts[table].values())


@settings(max_examples=30, deadline=None)
@given(
    n_rows=st.integers(1, 60),
    wanted=st.fixed_dictionaries({r: st.integers(0, 5) for r in (*REASONS["orders"], "duplicate")}),
    seed=st.integers(0, 1000),
)
def test_planting_adds_exactly_the_rows_it_reports(
    n_rows: int, wanted: dict[str, int], seed: int
) -> None:
    clean = pl.DataFrame(
        {
            "order_id": [f"O{i}" for i in range(n_rows)],
            "line_no": ["1"] * n_rows,
            "customer_id": ["C1"] * n_rows,
            "sku": ["SKU000001"] * n_rows,
            "quantity": ["2"] * n_rows,
            "unit_price": ["3.5"] * n_rows,
            "ordered_at": ["2024-01-01 10:00:00"] * n_rows,
            "country": ["UK"] * n_rows,
            "channel": ["web"] * n_rows,
        }
    )
    out, planted = plant_dirty_rows(clean, "orders", wanted, np.random.default_rng(seed))
    assert out.height == n_rows + sum(planted.values())
    assert sum(planted.values()) == min(sum(wanted.values()), n_rows)
    assert all(planted[r] <= wanted[r] for r in wanted)
    # the clean rows are all still there, in order
    assert out.join(clean, on=clean.columns, how="semi").height >= n_rows


@pytest.mark.parametrize("name", ["tiny", "small", "medium", "large"])
def test_profiles_match_the_design_table(name: str) -> None:
    expected = {
        "tiny": (300, 60, 180, 8_000),
        "small": (5_000, 500, 730, 300_000),
        "medium": (50_000, 5_000, 730, 3_000_000),
        "large": (500_000, 20_000, 730, 30_000_000),
    }[name]
    p = PROFILES[name]
    assert (p.customers, p.skus, p.days, p.lines_target) == expected


def test_an_interrupted_generate_leaves_the_landing_folder_as_it_was(
    tmp_path: Path, tiny_shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shop is written aside and moved in whole. Written in place, a generate stopped
    part-way (Ctrl-C during `make run`'s first minute) left a few months of orders, and
    `generate --if-missing` took them for a landed shop."""
    import nightshift.generator

    landing = tmp_path / "landing"
    written = []
    real_write = nightshift.generator.write_table

    def interrupted_after_three(frame: pl.DataFrame, path: Path, fmt: str) -> Path:
        if len(written) == 3:
            raise KeyboardInterrupt
        written.append(path)
        return real_write(frame, path, fmt)

    with monkeypatch.context() as patch:
        patch.setattr(nightshift.generator, "write_table", interrupted_after_three)
        with pytest.raises(KeyboardInterrupt):
            generate_shop("tiny", landing, seed=TINY_SEED, end=TINY_END)
    assert [p for p in landing.rglob("*") if p.is_file() and ".generating" not in p.parts] == []

    generate_shop("tiny", landing, seed=TINY_SEED, end=TINY_END)  # the next one, whole
    assert digest_tree(landing) == digest_tree(tiny_shop / "landing")  # no .generating left
