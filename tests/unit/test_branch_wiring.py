"""The flow's branch registry agrees with itself and with the table registry."""

from __future__ import annotations

from flows.nightly import BRANCH_MARTS, MODEL_BRANCHES, selected_models
from nightshift import tables
from tasks.branch import BranchResult
from tasks.quality import quality_rows


def test_every_branch_names_registered_marts() -> None:
    assert set(BRANCH_MARTS) == set(MODEL_BRANCHES)
    for marts in BRANCH_MARTS.values():
        assert marts and all(mart in tables.MARTS and mart in tables.DATED_MARTS for mart in marts)


def test_pricing_always_runs_after_demand() -> None:
    assert selected_models(None).index("pricing") > selected_models(None).index("demand")
    assert selected_models(["pricing", "demand"]) == ["demand", "pricing"]


def test_quality_rows_pair_metrics_with_the_baseline_and_record_failures() -> None:
    ran = BranchResult(
        "segments", ["customer_segments"], "nightshift-segments/2",
        metrics={"silhouette": 0.47, "inertia": 10.0}, baseline_metrics={"silhouette": -0.01},
        promoted=True, mlflow_run_id="abc", gate="ok",
    )  # fmt: skip
    frame = quality_rows([ran], {"pricing": "RuntimeError: boom"})
    rows = {(r["branch"], r["metric"]): r for r in frame.iter_rows(named=True)}
    assert rows["segments", "silhouette"]["baseline_value"] == -0.01
    assert rows["segments", "inertia"]["baseline_value"] is None
    assert rows["segments", "silhouette"]["passed"] is True
    assert rows["pricing", "failed"]["passed"] is False
    assert rows["pricing", "failed"]["gate"] == "RuntimeError: boom"
