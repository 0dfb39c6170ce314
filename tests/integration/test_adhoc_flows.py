"""retrain and backfill, the ad-hoc flows behind the Prefect UI's deployments, run for real
under the session's Prefect API on the tiny shop."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from flows.adhoc import backfill, retrain
from tests.conftest import TINY_END, table_checksum

pytestmark = pytest.mark.integration


def kpi_state(home: Path) -> tuple[list[str], str, list[tuple]]:
    partitions = sorted(p.name for p in (home / "exports" / "kpi_daily").iterdir())
    with duckdb.connect(str(home / "marts.duckdb"), read_only=True) as con:
        history = table_checksum(con, "main.kpi_daily_history", exclude=("run_id", "mlflow_run_id"))
        as_of = con.execute("select distinct as_of from kpi_daily").fetchall()
    return partitions, history, as_of


def test_backfill_runs_each_night_in_order_and_again_changes_nothing(nightly_home: Path) -> None:
    start = TINY_END - timedelta(days=2)
    results = backfill(start=start, end=TINY_END, models=[])
    assert [r["as_of"] for r in results] == [
        (start + timedelta(days=n)).isoformat() for n in range(3)
    ]
    assert all(r["status"] == "succeeded" for r in results)
    partitions, history, as_of = kpi_state(nightly_home)
    assert partitions == [
        "_columns",
        *(f"as_of={(start + timedelta(days=n)).isoformat()}" for n in range(3)),
    ]
    assert as_of == [(TINY_END,)]  # the marts end on the last night

    backfill(start=start, end=TINY_END, models=[])  # idempotent: same partitions, same rows
    assert kpi_state(nightly_home) == (partitions, history, as_of)


def test_retrain_republishes_one_model_and_keeps_the_others(nightly_home: Path) -> None:
    from mlflow import MlflowClient

    from tests.conftest import settings_at

    first = retrain(model="segments", as_of=TINY_END)
    assert first["status"] == "succeeded"
    assert "customer_segments" in first["published"]
    second = retrain(model="segments", as_of=TINY_END)
    with duckdb.connect(str(nightly_home / "marts.duckdb"), read_only=True) as con:
        runs = con.execute("select distinct run_id from customer_segments").fetchall()
        models = con.execute("select models from runs order by started_at").fetchall()
    assert runs == [(second["run_id"],)]
    assert models == [(["segments"],), (["segments"],)]
    client = MlflowClient(tracking_uri=settings_at(nightly_home).tracking_uri)
    assert len(client.search_model_versions("name = 'nightshift-segments'")) == 2


def test_a_retrain_whose_branch_fails_ends_degraded(
    nightly_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retraining one model that then fails publishes nothing new for it, and the retrain
    run itself says Degraded in the UI, not Completed like a retrain that worked."""
    from prefect import task

    import flows.nightly

    @task(name="segments")
    def broken_segments(settings, run):
        raise RuntimeError("sabotaged for the test")

    monkeypatch.setitem(flows.nightly.MODEL_BRANCHES, "segments", broken_segments)
    state = retrain(model="segments", as_of=TINY_END, return_state=True)
    assert (state.type.value, state.name) == ("COMPLETED", "Degraded")
    assert state.message.startswith(
        f"published, but branch(es) failed: segments on {TINY_END.isoformat()}"
    )
    night = state.result()
    assert night["failed_branches"] == {"segments": "RuntimeError: sabotaged for the test"}
    assert "customer_segments" not in night["published"]
