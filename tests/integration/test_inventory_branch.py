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
    assert result["published"] == ["inventory_plan", "kpi_daily", "model_quality", "runs"]
    with duckdb.connect(str(nightly_home / "marts.duckdb"), read_only=True) as con:
        summary = con.execute(
            "select count(*), count(distinct sku), count(distinct (as_of, run_id, mlflow_run_id)), "
            "any_value(mlflow_run_id), bool_and(safety_stock >= 0 and order_qty >= 0), "
            "bool_and(reorder_point >= lead_time_demand), "
            "bool_and(order_qty = case when active then "
            "greatest(ceil(order_up_to - (on_hand + on_order)), 0) else 0 end) from inventory_plan"
        ).fetchone()
        new = con.execute(
            "select demand_class, order_qty, safety_stock from inventory_plan where sku = 'SKU-NEW-2'"
        ).fetchone()
        classes = dict(
            con.execute("select demand_class, count(*) from inventory_plan group by 1").fetchall()
        )
        inactive = con.execute(
            "select count(*), count(*) filter (where order_qty > 0) from inventory_plan "
            "where not active"
        ).fetchone()
    with duckdb.connect(str(settings_at(nightly_home).warehouse_path), read_only=True) as con:
        products = con.execute("select count(*) from features.dim_product").fetchone()[0]
        discontinued = con.execute(
            "select count(*) from features.dim_product where not active"
        ).fetchone()[0]
    rows, skus, lineages, child_id, non_negative, rop_ok, order_rule = summary
    assert rows == skus == products and lineages == 1
    assert non_negative and rop_ok and order_rule
    assert new == ("too_short", 0, 0.0)  # never sold: an answer, not a crash
    assert inactive == (discontinued, 0) and discontinued > 0  # planned, never reordered
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

    # tonight's policies are a registered version; champion only if the gate passed
    (version,) = client.search_model_versions("name = 'nightshift-inventory'")
    assert version.run_id == child_id
    plan = {a.path for a in client.list_artifacts(child_id, "model")}
    assert plan == {"model/inventory_plan.parquet"}
    aliases = client.get_registered_model("nightshift-inventory").aliases
    assert aliases == ({"champion": version.version} if promoted else {})


def test_a_missed_gate_publishes_the_better_of_the_plan_and_the_baseline(
    nightly_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A target the plan cannot meet: the champion alias stays unset, and the night
    publishes whichever of the plan and the baseline replayed the higher service level,
    with the lineage and the gate's words saying which."""
    from mlflow import MlflowClient

    monkeypatch.setenv("NIGHTSHIFT_INVENTORY_SERVICE_LEVEL", "0.999")
    monkeypatch.setenv("NIGHTSHIFT_INVENTORY_GATE_TOLERANCE", "0")
    nightly(as_of=TINY_END, models=["inventory"])
    with duckdb.connect(str(nightly_home / "marts.duckdb"), read_only=True) as con:
        published = con.execute("select distinct model from inventory_plan").fetchall()
        model, passed, gate, value, baseline_value, child_id = con.execute(
            "select model, passed, gate, value, baseline_value, mlflow_run_id from model_quality "
            "where branch = 'inventory' and metric = 'service_level_all'"
        ).fetchone()
    client = MlflowClient(tracking_uri=settings_at(nightly_home).tracking_uri)
    metrics = client.get_run(child_id).data.metrics
    planner, baseline = metrics["service_level_all"], metrics["baseline_service_level_all"]
    assert planner < 0.999 and metrics["promoted"] == 0.0 and not passed
    assert (value, baseline_value) == (planner, baseline)
    assert client.get_registered_model("nightshift-inventory").aliases == {}
    if planner > baseline:
        assert metrics["published_plan"] == 1.0 and model == "nightshift-inventory/1"
        assert ("baseline",) not in published
        assert gate.endswith("not promoted, but published: the baseline replays worse")
    else:
        assert metrics["published_plan"] == 0.0 and model == "baseline"
        assert published == [("baseline",)]
        assert gate.endswith("published the baseline")


def test_mapped_batches_match_serial_on_a_process_pool_and_on_dask(
    nightly_home: Path,
) -> None:
    """The same plan serial, as Prefect tasks on a local process pool, and as Prefect tasks
    on a real (local) Dask cluster reached by address, as NIGHTSHIFT_DASK_ADDRESS would."""
    import asyncio

    import numpy as np
    from distributed import LocalCluster
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    from models.inventory import InventoryConfig, SkuInput
    from tasks.inventory import plan_all

    rng = np.random.default_rng(3)
    skus = [
        SkuInput(f"S{i}", np.round(rng.gamma(2.0, 2.0, 120)), 7, 1.0, 5, 0, 0.95) for i in range(9)
    ]
    config = InventoryConfig()

    @flow
    def plan_in_a_flow(workers: int, dask_address: str | None) -> list[dict[str, object]]:
        return plan_all(skus, config, TINY_END, 14, 3, workers, dask_address=dask_address)

    serial = plan_all(skus, config, TINY_END, 14, 3, workers=1)
    pooled_state = plan_in_a_flow(2, None, return_state=True)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        on_dask = plan_in_a_flow(1, cluster.scheduler_address)
    assert [r["sku"] for r in serial] == [s.sku for s in skus]
    assert repr(pooled_state.result()) == repr(serial)
    assert repr(on_dask) == repr(serial)

    async def batch_task_runs(flow_run_id) -> list[str]:
        async with get_client() as client:
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                sort=TaskRunSort.EXPECTED_START_TIME_ASC,  # this server rejects sort/limit None
                limit=50,
            )
        return [r.name for r in runs if r.state and r.state.is_completed()]

    names = asyncio.run(batch_task_runs(pooled_state.state_details.flow_run_id))
    assert sum(name.startswith("plan-inventory-batch") for name in names) == 3
