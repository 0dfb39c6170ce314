"""The inventory branch inside the nightly flow on `tiny`: real Prefect, DuckDB and MLflow."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from flows.nightly import nightly
from tests.conftest import TINY_END, settings_at

pytestmark = pytest.mark.integration


def test_the_branch_plans_every_product_with_lineage_and_a_child_run(
    nightly_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    monkeypatch.setenv("NIGHTSHIFT_INVENTORY_BATCH_SIZE", "25")  # several batches, 2 processes
    with (nightly_home / "landing" / "products" / "synthetic_products.csv").open("a") as f:
        f.write("SKU-NEW-2,BRAND NEW VASE,candles,3.00,9.99,true\n")
    result = nightly(as_of=TINY_END, models=["inventory"])
    assert result["published"] == ["inventory_plan", "kpi_daily", "runs"]
    with duckdb.connect(str(nightly_home / "marts.duckdb"), read_only=True) as con:
        summary = con.execute(
            "select count(*), count(distinct sku), count(distinct (as_of, run_id, mlflow_run_id)), "
            "any_value(mlflow_run_id), bool_and(safety_stock >= 0 and order_qty >= 0), "
            "bool_and(reorder_point >= lead_time_demand), "
            "bool_and(order_qty = 0 or on_hand + on_order <= reorder_point) from inventory_plan"
        ).fetchone()
        new = con.execute(
            "select demand_class, order_qty, safety_stock from inventory_plan where sku = 'SKU-NEW-2'"
        ).fetchone()
        classes = dict(
            con.execute("select demand_class, count(*) from inventory_plan group by 1").fetchall()
        )
    with duckdb.connect(str(settings_at(nightly_home).warehouse_path), read_only=True) as con:
        products = con.execute("select count(*) from features.dim_product").fetchone()[0]
    rows, skus, lineages, child_id, non_negative, rop_ok, order_rule = summary
    assert rows == skus == products and lineages == 1
    assert non_negative and rop_ok and order_rule
    assert new == ("too_short", 0, 0.0)  # never sold: an answer, not a crash
    assert set(classes) <= {"smooth", "erratic", "intermittent", "constant", "too_short"}

    client = MlflowClient(tracking_uri=settings_at(nightly_home).tracking_uri)
    child = client.get_run(child_id)
    assert child.info.status == "FINISHED"
    assert child.data.tags["mlflow.parentRunId"] == result["mlflow_run_id"]
    metrics = child.data.metrics
    assert 0 < metrics["service_level_all"] <= 1
    assert sum(v for k, v in metrics.items() if k.startswith("class_")) == products
    assert "sample_plans.png" in {a.path for a in client.list_artifacts(child_id)}
    promoted = metrics["promoted"] == 1.0
    assert promoted == (metrics["service_level_all"] >= metrics["service_target_all"] - 0.05)
