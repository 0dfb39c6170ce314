"""The segments and pricing branches inside the nightly flow on `tiny`: real Prefect, DuckDB
and MLflow. Pricing runs after demand and takes its expected units from tonight's forecast."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from flows.nightly import nightly, selected_models
from tests.conftest import TINY_END, settings_at

pytestmark = pytest.mark.integration


def test_pricing_follows_demand_and_both_branches_publish_with_lineage(
    nightly_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    monkeypatch.setenv("NIGHTSHIFT_PRICING_CATEGORY_BAND", "0.05")
    monkeypatch.setenv("NIGHTSHIFT_DEMAND_EPOCHS", "3")
    assert selected_models(["pricing", "segments", "demand"]) == ["demand", "segments", "pricing"]
    result = nightly(as_of=TINY_END, models=["pricing", "segments", "demand"])
    assert set(result["published"]) >= {
        "customer_segments", "segment_profiles", "price_recommendations", "demand_forecast",
    }  # fmt: skip

    settings = settings_at(nightly_home)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        customers = con.execute("select count(*) from features.customer_rfm").fetchone()[0]
        active = con.execute(
            "select count(*) from features.dim_product where coalesce(active, true) "
            "and current_price > 0"
        ).fetchone()[0]
    with duckdb.connect(str(settings.marts_path), read_only=True) as con:
        seg = con.execute(
            "select count(*), count(distinct customer_id), count(distinct segment_id), "
            "count(distinct (as_of, run_id, mlflow_run_id)), any_value(mlflow_run_id) "
            "from customer_segments"
        ).fetchone()
        profiles = con.execute(
            "select sum(customers), sum(share), count(distinct segment_name), count(*), "
            "bool_and(len(centroid) = 6) from segment_profiles"
        ).fetchone()
        prices = con.execute(
            "select count(*), count(distinct sku), any_value(mlflow_run_id), any_value(model), "
            "bool_and(recommended_price >= unit_cost * 1.05 - 1e-9 "
            "  or binding_constraint like 'infeasible%'), "
            "bool_and(abs(recommended_price / current_price - 1) <= 0.2 + 1e-9), "
            "bool_and(demand_source = 'forecast'), "
            "bool_and(elasticity between -4 and -0.2), "
            "count(*) filter (where binding_constraint like 'infeasible%' "
            "  and recommended_price <> current_price) "
            "from price_recommendations"
        ).fetchone()
        admissible_uplift = con.execute(
            "select sum(profit_uplift) from price_recommendations "
            "where binding_constraint not like 'infeasible%'"
        ).fetchone()[0]
        band = con.execute(
            "select max(abs(idx - 1)) from (select p.category, avg(r.recommended_price / "
            "r.current_price) as idx from price_recommendations r join read_parquet($p) p "
            "using (sku) group by 1)",
            {"p": str(nightly_home / "truth" / "sku_params.parquet")},
        ).fetchone()[0]

    rows, distinct, k, lineages, segments_run = seg
    assert rows == distinct == customers and k == 6 and lineages == 1
    assert profiles[0] == customers and profiles[1] == pytest.approx(1.0)
    assert profiles[2] == profiles[3] == 6 and profiles[4]
    n, distinct_skus, pricing_run, model, margin_ok, change_ok, from_forecast, clipped, moved = (
        prices
    )
    assert n == distinct_skus == active
    assert model.startswith("milp/")
    assert margin_ok and change_ok and from_forecast and clipped and moved == 0
    assert admissible_uplift >= 0
    assert band <= 0.05 + 1e-6

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    for child_id, expected in (
        (segments_run, {"silhouette", "inertia", "baseline_silhouette", "size_0"}),
        (pricing_run, {"objective", "solve_seconds", "profit_uplift", "promoted"}),
    ):
        child = client.get_run(child_id)
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == result["mlflow_run_id"]
        assert expected <= set(child.data.metrics)
    assert client.get_run(pricing_run).data.metrics["profit_uplift"] >= 0
    assert "segments_pca.png" in {a.path for a in client.list_artifacts(segments_run)}
    version = client.get_model_version("nightshift-segments", "1")
    assert version.run_id == segments_run
    champion = client.get_model_version_by_alias("nightshift-segments", "champion")
    assert str(champion.version) == "1"
    import mlflow.sklearn
    import numpy as np

    mlflow.set_tracking_uri(settings.tracking_uri)
    pipeline = mlflow.sklearn.load_model("models:/nightshift-segments@champion")
    clusters = pipeline.predict(
        np.array([[5.0, 2.0, 40, 900.0, 3.0, 500], [300, 0.1, 2, 20, 1, 400]])
    )
    assert set(clusters.tolist()) <= set(range(6)) and clusters[0] != clusters[1]


def test_segment_ids_keep_their_meaning_on_the_next_night(nightly_home: Path) -> None:
    """Two nights a day apart: the second matches its clusters to the published ones."""
    nightly(as_of=TINY_END - timedelta(days=1), models=["segments"])
    marts = settings_at(nightly_home).marts_path
    with duckdb.connect(str(marts), read_only=True) as con:
        first = dict(
            con.execute("select customer_id, segment_id from customer_segments").fetchall()
        )
        first_names = dict(
            con.execute("select segment_id, segment_name from segment_profiles").fetchall()
        )
    nightly(as_of=TINY_END, models=["segments"])
    with duckdb.connect(str(marts), read_only=True) as con:
        second = dict(
            con.execute("select customer_id, segment_id from customer_segments").fetchall()
        )
        second_names = dict(
            con.execute("select segment_id, segment_name from segment_profiles").fetchall()
        )
        history = con.execute(
            "select count(distinct as_of) from customer_segments_history"
        ).fetchone()[0]
    common = set(first) & set(second)
    assert len(common) >= 0.95 * len(first)
    kept = sum(first[c] == second[c] for c in common) / len(common)
    assert kept >= 0.9
    assert second_names == first_names
    assert history == 2


def test_a_failed_branch_degrades_the_night_but_the_others_publish(
    nightly_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sabotage the segments branch on the second night: pricing still publishes tonight's
    prices, the segment tables keep last night's rows flagged stale, and the run says so."""
    from mlflow import MlflowClient
    from prefect import task

    import flows.nightly

    yesterday = TINY_END - timedelta(days=1)
    nightly(as_of=yesterday, models=["segments", "pricing"])
    settings = settings_at(nightly_home)
    registry = MlflowClient(tracking_uri=settings.tracking_uri)
    segments_champion = registry.get_model_version_by_alias("nightshift-segments", "champion")
    segments_versions = len(registry.search_model_versions("name = 'nightshift-segments'"))

    @task(name="segments")
    def broken_segments(settings, run):
        raise RuntimeError("sabotaged for the test")

    monkeypatch.setitem(flows.nightly.MODEL_BRANCHES, "segments", broken_segments)
    result = nightly(as_of=TINY_END, models=["segments", "pricing"])
    assert result["status"] == "degraded"
    assert result["failed_branches"] == {"segments": "RuntimeError: sabotaged for the test"}

    with duckdb.connect(str(settings.marts_path), read_only=True) as con:
        run = con.execute(
            "select status, error from runs where run_id = $r", {"r": result["run_id"]}
        ).fetchone()
        prices_as_of = con.execute("select distinct as_of from price_recommendations").fetchall()
        segments_as_of = con.execute("select distinct as_of from customer_segments").fetchall()
        models = {
            m for (m,) in con.execute("select distinct model from segment_profiles").fetchall()
        }
        quality = con.execute(
            "select branch, model, metric, passed from model_quality order by branch, metric"
        ).fetchall()
    assert run == ("degraded", "segments: RuntimeError: sabotaged for the test")
    assert prices_as_of == [(TINY_END,)] and segments_as_of == [(yesterday,)]
    assert len(models) == 1
    assert models.pop().startswith(f"stale (segments failed on {TINY_END.isoformat()}): ")
    assert ("segments", "failed", "failed", False) in quality
    assert any(
        branch == "pricing" and metric == "expected_profit" for branch, _, metric, _ in quality
    )

    # the failed branch registered nothing and its champion did not move; pricing's did
    assert len(registry.search_model_versions("name = 'nightshift-segments'")) == segments_versions
    assert (
        registry.get_model_version_by_alias("nightshift-segments", "champion").version
        == segments_champion.version
    )
    pricing_champion = registry.get_model_version_by_alias("nightshift-pricing", "champion")
    assert (
        registry.get_run(pricing_champion.run_id).data.tags["nightshift.run_id"]
        == (result["run_id"])
    )

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    parent = client.get_run(result["mlflow_run_id"])
    assert parent.data.tags["nightshift.status"] == "degraded"
    assert parent.info.status == "FINISHED"

    # and Prefect shows the night as Degraded, naming the branch, where the UI lists runs
    from prefect import get_client

    with duckdb.connect(str(settings.marts_path), read_only=True) as con:
        (flow_run_id,) = con.execute(
            "select flow_run_id from runs where run_id = $r", {"r": result["run_id"]}
        ).fetchone()
    with get_client(sync_client=True) as prefect:
        state = prefect.read_flow_run(flow_run_id).state
    assert (state.type.value, state.name) == ("COMPLETED", "Degraded")
    assert state.message == (
        f"published, but branch(es) failed: segments on {TINY_END.isoformat()}; "
        "their tables keep their last rows"
    )
