"""Features (sql/features): full calendars, returns, price carry-forward, no look-ahead."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from nightshift.warehouse import open_warehouse
from tasks.features import build_features, build_kpis
from tasks.ingest import ingest_landing
from tests.conftest import TINY_END, settings_at, table_checksum
from tests.unit.test_ingest import write_orders

FEATURE_TABLES = (
    "features.fct_daily_demand",
    "features.dim_product",
    "features.dim_inventory",
    "features.user_item_interactions",
    "features.customer_rfm",
)


def build(home: Path, as_of: date, **overrides: object) -> None:
    settings = settings_at(home, **overrides)
    ingest_landing.fn(settings, "run-f")
    build_features.fn(settings, as_of)
    build_kpis.fn(settings, as_of, "run-f", None)


def test_daily_demand_has_every_calendar_day_per_sku(tiny_home: Path) -> None:
    build(tiny_home, TINY_END)
    with open_warehouse(settings_at(tiny_home), read_only=True) as con:
        gaps = con.execute(
            """
            select sku, count(*) as days, min(date) as first, max(date) as last
            from features.fct_daily_demand group by sku
            having count(*) <> date_diff('day', min(date), max(date)) + 1 or max(date) <> $end
            """,
            {"end": TINY_END},
        ).fetchall()
        zero_days = con.execute(
            "select count(*) from features.fct_daily_demand where is_zero_day"
        ).fetchone()[0]
        nulls = con.execute(
            "select count(*) from features.fct_daily_demand where price is null"
        ).fetchone()[0]
    assert gaps == []
    assert zero_days > 0
    assert nulls == 0  # a price is known on every day


def test_a_return_reduces_net_demand_on_the_day_it_happens(tmp_path: Path) -> None:
    write_orders(
        tmp_path / "landing" / "orders" / "o.csv",
        [
            "A1,1,C1,SKU1,5,2.00,2024-01-01 10:00:00,UK,web",
            "A2,1,C2,SKU1,1,3.00,2024-01-01 11:00:00,UK,web",
            "RA1,1,C1,SKU1,-2,2.00,2024-01-03 09:00:00,UK,web",
            "A3,1,C1,SKU2,1,1.00,2024-01-04 09:00:00,UK,web",
        ],
    )
    build(tmp_path, date(2024, 1, 4))
    with open_warehouse(settings_at(tmp_path), read_only=True) as con:
        rows = con.execute(
            """
            select date, units_gross, units_returned, units_net, revenue_net, avg_price, price
            from features.fct_daily_demand where sku = 'SKU1' order by date
            """
        ).fetchall()
    assert [(r[0].day, r[1], r[2], r[3]) for r in rows] == [
        (1, 6, 0, 6),
        (2, 0, 0, 0),
        (3, 0, 2, -2),
        (4, 0, 0, 0),
    ]
    assert float(rows[0][4]) == 13.0 and float(rows[2][4]) == -4.0
    assert abs(rows[0][5] - 13 / 6) < 1e-9
    assert [round(r[6], 4) for r in rows] == [
        round(13 / 6, 4)
    ] * 4  # carried forward over zero days


def test_a_giveaway_sets_no_price(tmp_path: Path) -> None:
    """A line at price 0 counts as demand but is not a selling price: carried forward, a
    price of 0 broke log-price models (the real data gives items away)."""
    write_orders(
        tmp_path / "landing" / "orders" / "o.csv",
        [
            "A1,1,C1,SKU1,4,2.50,2024-01-01 10:00:00,UK,web",
            "A2,1,C2,SKU1,3,0.00,2024-01-02 11:00:00,UK,web",
            "A3,1,C1,SKU1,2,3.00,2024-01-04 09:00:00,UK,web",
            "A3,2,C1,SKU1,1,0.00,2024-01-04 09:00:00,UK,web",
        ],
    )
    build(tmp_path, date(2024, 1, 4))
    with open_warehouse(settings_at(tmp_path), read_only=True) as con:
        rows = con.execute(
            """
            select units_gross, avg_price, price
            from features.fct_daily_demand where sku = 'SKU1' order by date
            """
        ).fetchall()
    assert [r[0] for r in rows] == [4, 3, 0, 3]  # the free units are demand
    assert [r[1] for r in rows] == [2.5, None, None, 3.0]  # 6.00 for the 2 paid units
    assert [r[2] for r in rows] == [2.5, 2.5, 2.5, 3.0]


def test_missing_cost_and_inventory_get_flagged_defaults(tmp_path: Path) -> None:
    write_orders(
        tmp_path / "landing" / "orders" / "o.csv",
        [f"A{d},1,C1,SKU1,2,10.00,2024-01-{d:02d} 10:00:00,UK,web" for d in range(1, 11)],
    )
    build(tmp_path, date(2024, 1, 10), default_cost_share=0.5, default_cover_days=10)
    with open_warehouse(settings_at(tmp_path), read_only=True) as con:
        product = con.execute(
            "select unit_cost, unit_cost_is_default, is_derived, active from features.dim_product"
        ).fetchall()
        stock = con.execute(
            "select on_hand, on_order, lead_time_days, is_default from features.dim_inventory"
        ).fetchall()
    assert [(float(p[0]), p[1], p[2], p[3]) for p in product] == [(5.0, True, True, True)]
    assert stock == [(20, 0, 14, True)]  # 10 days of cover x 2 units/day, default lead time


def features_at(home: Path) -> dict[str, str]:
    with open_warehouse(settings_at(home), read_only=True) as con:
        return {t: table_checksum(con, t) for t in (*FEATURE_TABLES, "marts.kpi_daily")}


def test_a_past_as_of_sees_nothing_after_it(tiny_home: Path, tmp_path: Path) -> None:
    """Running D on a warehouse that holds D+30 equals running D on data cut at D."""
    as_of = TINY_END - timedelta(days=30)
    build(tiny_home, as_of)
    full = features_at(tiny_home)

    cut = tmp_path / "cut"
    shutil.copytree(tiny_home / "landing", cut / "landing")
    for path in (cut / "landing" / "orders").glob("*.csv"):
        frame = pl.read_csv(path, infer_schema=False)
        stamp = frame["ordered_at"].str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False)
        keep = stamp.is_null() | (stamp.dt.date() <= as_of) | (stamp.dt.year() > 2060)
        frame.filter(keep).write_csv(path)
    for path in (cut / "landing" / "events").glob("*.csv"):
        frame = pl.read_csv(path, infer_schema=False)
        stamp = frame["ts"].str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False)
        frame.filter(
            stamp.is_null() | (stamp.dt.date() <= as_of) | (stamp.dt.year() > 2060)
        ).write_csv(path)
    build(cut, as_of)
    assert features_at(cut) == full


def test_interactions_weight_purchases_over_views_and_decay_with_age(tmp_path: Path) -> None:
    write_orders(
        tmp_path / "landing" / "orders" / "o.csv",
        [
            "A1,1,C1,SKU1,1,1.00,2024-01-10 10:00:00,UK,web",
            "A2,1,C1,SKU2,1,1.00,2023-10-12 10:00:00,UK,web",
        ],
    )
    events = tmp_path / "landing" / "events" / "e.csv"
    events.parent.mkdir(parents=True)
    events.write_text(
        "user_id,session_id,sku,event_type,ts\n"
        "C1,S1,SKU3,view,2024-01-10 09:00:00\n"
        "C1,S1,SKU3,add_to_cart,2024-01-10 09:01:00\n"
        "C1,S1,SKU1,purchase,2024-01-10 10:00:00\n"
    )
    build(tmp_path, date(2024, 1, 10))
    with open_warehouse(settings_at(tmp_path), read_only=True) as con:
        rows = dict(
            (sku, (views, carts, purchases, weight))
            for sku, views, carts, purchases, weight in con.execute(
                "select sku, views, carts, purchases, weight from features.user_item_interactions"
            ).fetchall()
        )
    assert rows["SKU1"][:3] == (0, 0, 1)  # the purchase event is not counted twice
    assert rows["SKU3"][:3] == (1, 1, 0)
    assert 4.5 < rows["SKU1"][3] <= 5.0  # a fresh purchase weighs ~5
    assert 3.5 < rows["SKU3"][3] <= 4.0  # a fresh view + cart weigh ~1 + 3
    assert 2.0 < rows["SKU2"][3] < 2.8  # a purchase 90 days old weighs half
