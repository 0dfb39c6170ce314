"""The recommender branch inside the nightly flow on `tiny`: real Prefect, DuckDB and MLflow."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flows.nightly import nightly
from tests.conftest import TINY_END, settings_at

pytestmark = pytest.mark.integration


def plant_cold_start_customers(home: Path) -> None:
    """A German customer whose only order line is a return, and a visitor who only saw an
    impression: both are known customers without any interaction."""
    (home / "landing" / "orders" / "late_return.csv").write_text(
        "order_id,line_no,customer_id,sku,quantity,unit_price,ordered_at,country,channel\n"
        f"R-COLD-1,1,C-COLD-DE,SKU000001,-1,4.20,{TINY_END} 10:00:00,Germany,web\n"
    )
    (home / "landing" / "events" / "impression_only.csv").write_text(
        "user_id,session_id,sku,event_type,ts\n"
        f"C-COLD-XX,S-COLD,SKU000002,impression,{TINY_END} 11:00:00\n"
    )


def test_the_branch_publishes_recommendations_with_lineage_and_a_child_run(
    nightly_home: Path,
) -> None:
    from mlflow import MlflowClient

    plant_cold_start_customers(nightly_home)
    result = nightly(as_of=TINY_END, models=["recommender"])
    assert result["published"] == ["kpi_daily", "model_quality", "recommendations", "runs"]

    with duckdb.connect(str(nightly_home / "marts.duckdb"), read_only=True) as con:
        lineage = con.execute(
            "select count(distinct as_of), any_value(as_of), count(distinct run_id), "
            "any_value(run_id), count(distinct mlflow_run_id), any_value(mlflow_run_id), "
            "count(distinct model), any_value(model) from recommendations"
        ).fetchone()
        per_customer = con.execute(
            "select source, count(*), min(n), max(n), bool_and(ranks_ok) from ("
            "  select customer_id, any_value(source) as source, count(*) as n,"
            "    list(rank order by rank) = range(1, count(*) + 1) as ranks_ok"
            "  from recommendations group by customer_id) group by source order by source"
        ).fetchall()
        cold = dict(
            con.execute(
                "select customer_id, list(sku order by rank) from recommendations "
                "where source = 'cold_start' group by customer_id"
            ).fetchall()
        )
        duplicates = con.execute(
            "select count(*) - count(distinct (customer_id, sku)) from recommendations"
        ).fetchone()[0]
        run_row = con.execute("select run_id, mlflow_run_id from runs").fetchone()
        quality = con.execute(
            "select metric, value, baseline_value, passed, model, mlflow_run_id "
            "from model_quality where branch = 'recommender'"
        ).fetchall()
    n_as_of, as_of, n_runs, run_id, n_mlflow, child_id, n_models, model = lineage
    assert (n_as_of, as_of, n_runs, n_mlflow, n_models) == (1, TINY_END, 1, 1, 1)
    assert run_id == run_row[0] == result["run_id"]
    assert duplicates == 0
    assert [row[0] for row in per_customer] == ["cold_start", "mf"]
    assert all(row[2] == row[3] == 20 and row[4] for row in per_customer)  # 20 ranked items
    assert set(cold) == {"C-COLD-DE", "C-COLD-XX"}

    settings = settings_at(nightly_home)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        german = con.execute(
            "select i.sku from features.user_item_interactions as i join ("
            "  select customer_id, arg_max(country, ordered_at) as country"
            "  from staging.stg_orders group by customer_id) as c using (customer_id) "
            "join features.dim_product as p using (sku) where c.country = 'Germany' and p.active "
            "group by i.sku order by sum(i.weight) desc, i.sku limit 3"
        ).fetchall()
        recent_hits = con.execute(
            "select count(*) from read_parquet($path) as r join staging.stg_orders as o "
            "on o.customer_id = r.customer_id and o.sku = r.sku "
            "where o.quantity > 0 and o.order_date > cast($as_of as date) - 30",
            {"path": str(partition_file(nightly_home, "recommendations")), "as_of": TINY_END},
        ).fetchone()[0]
        served = {
            customer_id
            for (customer_id,) in con.execute(
                "select distinct customer_id from read_parquet($path)",
                {"path": str(partition_file(nightly_home, "recommendations"))},
            ).fetchall()
        }
        buyers = {
            customer_id
            for (customer_id,) in con.execute(
                "select distinct customer_id from staging.stg_orders "
                "where customer_id is not null and order_date <= $as_of",
                {"as_of": TINY_END},
            ).fetchall()
        }
        last_seen = dict(
            con.execute(
                "select user_id, max(event_date) from staging.stg_events "
                "where event_date <= $as_of group by user_id",
                {"as_of": TINY_END},
            ).fetchall()
        )
        inactive_hits = con.execute(
            "select count(*) from read_parquet($path) as r join features.dim_product as p "
            "using (sku) where not p.active",
            {"path": str(partition_file(nightly_home, "recommendations"))},
        ).fetchone()[0]
    assert cold["C-COLD-DE"][:3] == [sku for (sku,) in german]  # popular in Germany
    assert recent_hits == 0 and inactive_hits == 0
    visitors = set(last_seen) - buyers
    recent_visitors = {v for v in visitors if last_seen[v] > TINY_END - timedelta(days=90)}
    old_visitors = visitors - recent_visitors
    assert served == buyers | recent_visitors  # every customer, visitors of the last 90 days
    assert old_visitors and not served & old_visitors

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    child = client.get_run(child_id)
    assert child.info.status == "FINISHED"
    assert child.data.tags["mlflow.parentRunId"] == result["mlflow_run_id"]
    assert child.data.tags["nightshift.run_id"] == run_id
    assert len(child.data.tags["nightshift.input_digest"]) == 64
    assert child.data.params["holdout_days"] == "14"
    metrics = child.data.metrics
    for name in ("recall", "ndcg", "map", "coverage"):
        assert 0 <= metrics[f"test_{name}"] <= 1 and 0 <= metrics[f"baseline_{name}"] <= 1
    epochs = client.get_metric_history(child_id, "val_ndcg")
    assert len(epochs) >= 1 and [m.step for m in epochs] == list(range(1, len(epochs) + 1))
    promoted = metrics["promoted"] == 1.0
    assert promoted == (metrics["test_ndcg"] > 1.05 * metrics["baseline_ndcg"])
    index = {a.path for a in client.list_artifacts(child_id, "index")}
    assert index == {"index/customers.parquet", "index/items.parquet"}
    version = client.get_model_version("nightshift-recommender", "1")
    assert version.run_id == child_id
    import mlflow.pytorch
    import torch

    mlflow.set_tracking_uri(settings.tracking_uri)
    registered = mlflow.pytorch.load_model("models:/nightshift-recommender/1")
    n_items = len(pl.read_parquet(client.download_artifacts(child_id, "index/items.parquet")))
    scores = registered(torch.arange(5))  # README: forward(user_indices) scores every item
    assert scores.shape == (5, n_items)
    torch.testing.assert_close(scores[2:3], registered(torch.tensor([2])))
    if promoted:
        assert model == "nightshift-recommender/1"
        champion = client.get_model_version_by_alias("nightshift-recommender", "champion")
        assert str(champion.version) == "1"
    else:
        assert model == "baseline"
    by_metric = {metric: row for metric, *row in quality}
    assert by_metric["ndcg"] == pytest.approx(
        [metrics["test_ndcg"], metrics["baseline_ndcg"], promoted, model, child_id]
    )


def partition_file(home: Path, table: str) -> Path:
    return home / "exports" / table / f"as_of={TINY_END.isoformat()}" / "part-0.parquet"


def test_a_failed_gate_publishes_the_baseline_and_keeps_the_champion(
    nightly_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    nightly(as_of=TINY_END - timedelta(days=1), models=["recommender"])
    client = MlflowClient(tracking_uri=settings_at(nightly_home).tracking_uri)
    client.set_registered_model_alias("nightshift-recommender", "champion", "1")
    monkeypatch.setenv("NIGHTSHIFT_RECOMMENDER_GATE_MARGIN", "1000")
    nightly(as_of=TINY_END, models=["recommender"])
    with duckdb.connect(str(nightly_home / "marts.duckdb"), read_only=True) as con:
        models = con.execute(
            "select as_of, any_value(model) from recommendations_history group by as_of "
            "order by as_of"
        ).fetchall()
        tonight = con.execute("select distinct model from recommendations").fetchall()
    assert tonight == [("baseline",)]
    assert models[-1] == (TINY_END, "baseline")
    champion = client.get_model_version_by_alias("nightshift-recommender", "champion")
    assert str(champion.version) == "1"
    assert len(client.search_model_versions("name = 'nightshift-recommender'")) == 2
