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


def test_the_run_summary_shows_gates_degraded_branches_and_links_to_mlflow() -> None:
    from datetime import date

    from tasks.branch import BranchResult
    from tasks.ingest import IngestSummary
    from tasks.report import summary_markdown

    ingest = IngestSummary(run_id="r1")
    ingest.audit = {
        "orders": {
            "rows_in": 10, "rows_staged": 7, "rows_quarantined": 2, "rows_duplicate": 1,
            "rows_new": 10,
        }
    }  # fmt: skip
    ingest.quarantined_by_reason = {"orders": {"null_key": 2}}
    ingest.staging_judged = "changed files"
    ingest.files_only_archived = ["orders/2024-01.csv"]
    branch = BranchResult(
        "demand", ["demand_forecast"], "nightshift-demand/2", {"mase": 0.8}, {"mase": 1.0},
        True, "c" * 32, "MASE 0.8 < 0.98",
    )  # fmt: skip
    text = summary_markdown(
        "r1", date(2024, 6, 30), ingest, [branch], ["demand_forecast"], "p" * 32,
        {"segments": "RuntimeError: boom"}, "http://127.0.0.1:5000", "3",
    )  # fmt: skip
    assert "| orders | 10 | 7 | 2 | 1 | 10 |" in text
    assert (
        "1 only in the raw archive (gone from landing/, their rows kept); staging judged: changed files."
        in text
    )
    assert "| orders | null_key | 2 |" in text
    assert "| demand | nightshift-demand/2 | True | MASE 0.8 < 0.98 | mase=0.8 | mase=1 |" in text
    assert f"(http://127.0.0.1:5000/#/experiments/3/runs/{'c' * 32})" in text
    assert f"(http://127.0.0.1:5000/#/experiments/3/runs/{'p' * 32})" in text
    assert "**Degraded**" in text and "- segments: RuntimeError: boom" in text
    local = summary_markdown(
        "r1", date(2024, 6, 30), ingest, [branch], [], "p" * 32, None, "sqlite:///x.db", "3"
    )
    assert f"`{'c' * 32}`" in local and "mlflow ui --backend-store-uri sqlite:///x.db" in local


def test_progress_outside_prefect_draws_a_bar_on_a_terminal() -> None:
    import io

    from rich.console import Console

    from nightshift.runlog import progress_reporter

    out = io.StringIO()
    report = progress_reporter(
        "loading 4 landing files", 4, Console(file=out, force_terminal=True, width=100)
    )
    for done in range(1, 5):
        report(done)
    text = out.getvalue()
    assert "loading 4 landing files" in text and "100%" in text
