"""The demand branch inside the nightly flow on `tiny`: real Prefect, DuckDB and MLflow."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from flows.nightly import nightly
from tests.conftest import TINY_END, settings_at

pytestmark = pytest.mark.integration


@pytest.fixture
def quick_demand(nightly_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Few epochs and a tiny ARIMA sample: this test checks wiring; quality is unit-tested."""
    monkeypatch.setenv("NIGHTSHIFT_DEMAND_EPOCHS", "3")
    monkeypatch.setenv("NIGHTSHIFT_DEMAND_WINDOWS_PER_EPOCH", "2048")
    monkeypatch.setenv("NIGHTSHIFT_DEMAND_ARIMA_SAMPLE", "2")
    with (nightly_home / "landing" / "products" / "synthetic_products.csv").open("a") as f:
        f.write("SKU-NEW-1,BRAND NEW LAMP,candles,3.00,9.99,true\n")
    return nightly_home


def test_the_branch_publishes_28_days_per_active_sku_with_a_child_run(quick_demand: Path) -> None:
    from mlflow import MlflowClient

    result = nightly(as_of=TINY_END, models=["demand"])
    assert result["published"] == ["demand_forecast", "kpi_daily", "model_quality", "runs"]
    with duckdb.connect(str(quick_demand / "marts.duckdb"), read_only=True) as con:
        shape = con.execute(
            "select count(distinct sku), count(*), min(date), max(date), min(horizon_day), "
            "max(horizon_day), bool_and(p10 <= p50 and p50 <= p90 and p10 >= 0), "
            "count(distinct (run_id, mlflow_run_id, as_of)), any_value(mlflow_run_id) "
            "from demand_forecast"
        ).fetchone()
        per_sku = con.execute(
            "select count(*) from (select sku from demand_forecast group by sku "
            "having count(*) <> 28 or count(distinct date) <> 28)"
        ).fetchone()[0]
        new_sku = con.execute(
            "select bool_and(is_fallback), any_value(model), sum(p50) from demand_forecast "
            "where sku = 'SKU-NEW-1'"
        ).fetchone()
        models = dict(
            con.execute(
                "select is_fallback, any_value(model) from demand_forecast group by 1"
            ).fetchall()
        )
    with duckdb.connect(str(settings_at(quick_demand).warehouse_path), read_only=True) as con:
        active = con.execute("select count(*) from features.dim_product where active").fetchone()[0]
    n_skus, rows, first, last, h_min, h_max, ordered, lineages, child_id = shape
    assert n_skus == active and rows == 28 * active and per_sku == 0
    assert (first, last) == (TINY_END + timedelta(days=1), TINY_END + timedelta(days=28))
    assert (h_min, h_max, ordered, lineages) == (1, 28, True, 1)
    assert new_sku[0] is True and new_sku[1] == "category_profile" and new_sku[2] > 0

    client = MlflowClient(tracking_uri=settings_at(quick_demand).tracking_uri)
    child = client.get_run(child_id)
    assert child.info.status == "FINISHED"
    assert child.data.tags["mlflow.parentRunId"] == result["mlflow_run_id"]
    metrics = child.data.metrics
    for name in ("mase", "wape", "pinball", "coverage"):
        assert f"lstm_{name}" in metrics and f"seasonal_naive_{name}" in metrics
    assert "arima_mase" in metrics and "lstm_high_mase" in metrics
    assert 0.5 <= metrics["interval_scale"] <= 6.0  # calibrated_interval_scale's grid
    assert len(client.get_metric_history(child_id, "val_pinball")) >= 1
    artifacts = {a.path for a in client.list_artifacts(child_id)}
    assert "forecast_fan.png" in artifacts
    promoted = metrics["promoted"] == 1.0
    assert promoted == (metrics["lstm_mase"] < 0.98 * metrics["seasonal_naive_mase"])
    assert models[False] == ("nightshift-demand/1" if promoted else "baseline")

    # The registered version scores any batch of windows, as one window at a time would.
    import mlflow.pytorch
    import torch

    from models.demand import N_FEATURES

    mlflow.set_tracking_uri(settings_at(quick_demand).tracking_uri)
    registered = mlflow.pytorch.load_model("models:/nightshift-demand/1")
    windows = torch.rand(3, 56 + 28, N_FEATURES, generator=torch.Generator().manual_seed(0))
    batch = registered(windows)
    one_by_one = torch.cat([registered(windows[i : i + 1]) for i in range(3)])
    assert batch.shape == (3, 28, 3)
    torch.testing.assert_close(batch, one_by_one)
