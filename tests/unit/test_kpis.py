"""kpi_daily definitions, checked on a hand-computed example."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from nightshift.warehouse import open_warehouse
from tests.conftest import settings_at
from tests.unit.test_features import build
from tests.unit.test_ingest import write_orders

ORDERS = [
    # day 1: two orders, C1 new, C2 new; a guest order
    "A1,1,C1,SKU1,2,10.00,2024-03-01 10:00:00,UK,web",
    "A1,2,C1,SKU2,1,5.00,2024-03-01 10:00:00,UK,web",
    "A2,1,C2,SKU1,1,10.00,2024-03-01 12:00:00,UK,web",
    "A3,1,,SKU2,4,5.00,2024-03-01 13:00:00,UK,web",
    # day 2: C1 returns; C3 new
    "A4,1,C1,SKU2,1,5.00,2024-03-02 09:00:00,UK,web",
    "A5,1,C3,SKU1,3,10.00,2024-03-02 11:00:00,UK,web",
    "RA1,1,C1,SKU1,-1,10.00,2024-03-02 15:00:00,UK,web",
    # day 3: nothing sold; only a return
    "RA5,1,C3,SKU1,-3,10.00,2024-03-03 15:00:00,UK,web",
]
EVENTS = [
    # day 1: session S1 converts (4 events), S2 bounces (1 event), S3 browses (2 events)
    "C1,S1,SKU1,impression,2024-03-01 09:55:00",
    "C1,S1,SKU1,view,2024-03-01 09:56:00",
    "C1,S1,SKU1,add_to_cart,2024-03-01 09:57:00",
    "C1,S1,SKU1,purchase,2024-03-01 10:00:00",
    "C9,S2,SKU2,view,2024-03-01 11:00:00",
    "C8,S3,SKU1,impression,2024-03-01 12:00:00",
    "C8,S3,SKU2,impression,2024-03-01 12:00:10",
    # day 2: one session, converts
    "C3,S4,SKU1,view,2024-03-02 10:59:00",
    "C3,S4,SKU1,purchase,2024-03-02 11:00:00",
]


def kpis(home: Path) -> dict[date, dict[str, object]]:
    with open_warehouse(settings_at(home), read_only=True) as con:
        cursor = con.execute("select * from marts.kpi_daily order by date")
        names = [d[0] for d in cursor.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    write_orders(tmp_path / "landing" / "orders" / "o.csv", ORDERS)
    return tmp_path


def test_kpis_match_a_hand_computed_example(shop: Path) -> None:
    events = shop / "landing" / "events" / "e.csv"
    events.parent.mkdir(parents=True)
    events.write_text("user_id,session_id,sku,event_type,ts\n" + "\n".join(EVENTS) + "\n")
    build(shop, date(2024, 3, 3))
    k = kpis(shop)
    d1, d2, d3 = (k[date(2024, 3, d)] for d in (1, 2, 3))
    assert (d1["orders"], d1["units"], float(d1["gmv"]), float(d1["aov"])) == (3, 8, 55.0, 18.33)
    assert (d1["customers"], d1["new_customers"], d1["repeat_customer_rate"]) == (2, 2, 0.0)
    assert (d1["sessions"], d1["conversion_rate"], d1["bounce_rate"]) == (3, 1 / 3, 1 / 3)
    assert d1["ctr"] == 2 / 3  # two views over three impressions
    assert (d2["orders"], d2["units"], float(d2["gmv"])) == (2, 3, 35.0)  # 1 + 3 bought, 1 returned
    assert (d2["customers"], d2["new_customers"], d2["repeat_customer_rate"]) == (2, 1, 0.5)
    assert (d2["sessions"], d2["conversion_rate"], d2["bounce_rate"], d2["ctr"]) == (
        1,
        1.0,
        0.0,
        None,
    )
    assert (d3["orders"], d3["units"], float(d3["gmv"]), d3["aov"]) == (0, -3, 0.0, None)
    assert (d3["customers"], d3["repeat_customer_rate"], d3["sessions"], d3["conversion_rate"]) == (
        0,
        None,
        0,
        None,
    )
    assert {r["as_of"] for r in k.values()} == {date(2024, 3, 3)}
    assert {r["run_id"] for r in k.values()} == {"run-f"}


def test_clickstream_kpis_are_null_not_zero_without_events(shop: Path) -> None:
    build(shop, date(2024, 3, 3))
    for row in kpis(shop).values():
        assert (row["sessions"], row["conversion_rate"], row["bounce_rate"], row["ctr"]) == (
            None,
        ) * 4
    assert kpis(shop)[date(2024, 3, 1)]["orders"] == 3


def test_every_kpi_column_has_a_definition(shop: Path) -> None:
    build(shop, date(2024, 3, 3))
    with open_warehouse(settings_at(shop), read_only=True) as con:
        missing = con.execute(
            "select column_name from duckdb_columns() where schema_name = 'marts' "
            "and table_name = 'kpi_daily' and (comment is null or comment = '')"
        ).fetchall()
    assert missing == []
