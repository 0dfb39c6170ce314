"""The nightly flow on `tiny`: real Prefect, real DuckDB files, a real local MLflow store."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from flows.nightly import nightly, selected_models
from nightshift.errors import ConfigError, ContractError
from nightshift.warehouse import open_warehouse
from tasks.tracking import combined_digest
from tests.conftest import TINY_END, settings_at, table_checksum

pytestmark = pytest.mark.integration


def marts(home: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(home / "marts.duckdb"), read_only=True)


def test_nightly_publishes_marts_with_lineage_and_an_mlflow_run(nightly_home: Path) -> None:
    from mlflow import MlflowClient

    result = nightly(as_of=TINY_END, models=[])
    assert result["published"] == ["kpi_daily", "runs"]
    assert not (nightly_home / "marts.duckdb.tmp").exists()
    with marts(nightly_home) as con:
        lineage = con.execute(
            "select count(*), count(distinct as_of), any_value(as_of), any_value(run_id), "
            "any_value(mlflow_run_id), max(date) from kpi_daily"
        ).fetchone()
        runs = con.execute(
            "select run_id, status, as_of, mlflow_run_id, row_counts->>'$.orders.rows_in' from runs"
        ).fetchall()
        history = con.execute("select count(*) from kpi_daily_history").fetchone()[0]
        comment = con.execute(
            "select comment from duckdb_tables() where table_name = 'kpi_daily'"
        ).fetchone()[0]
    days, n_as_of, as_of, run_id, mlflow_run_id, last_day = lineage
    assert days > 150 and n_as_of == 1 and as_of == TINY_END and last_day == TINY_END
    assert runs == [(run_id, "succeeded", TINY_END, mlflow_run_id, runs[0][4])]
    assert int(runs[0][4]) > 6_000
    assert history == days
    assert comment and "KPIs" in comment
    partition = nightly_home / "exports" / "kpi_daily" / f"as_of={TINY_END.isoformat()}"
    assert [p.name for p in partition.iterdir()] == ["part-0.parquet"]

    client = MlflowClient(tracking_uri=settings_at(nightly_home).tracking_uri)
    run = client.get_run(mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["nightshift.run_id"] == run_id
    assert run.data.params["as_of"] == TINY_END.isoformat()
    assert run.data.metrics["orders_rows_in"] == float(runs[0][4])
    # the parent carries what the night saw and which code ran, and its Prefect flow run
    assert run.data.tags["nightshift.flow_run_id"]
    assert run.data.tags["nightshift.code_version"]
    with duckdb.connect(str(settings_at(nightly_home).warehouse_path), read_only=True) as con:
        (digests,) = con.execute(
            "select input_digests from meta.runs where run_id = $r", {"r": run_id}
        ).fetchone()
    digests = json.loads(digests)
    assert set(digests) == {"orders", "events", "products", "inventory"}
    assert run.data.tags["nightshift.input_digest"] == combined_digest(digests)


def published_state(home: Path) -> tuple[str, int]:
    with marts(home) as con:
        return (
            table_checksum(con, "main.kpi_daily", exclude=("run_id", "mlflow_run_id")),
            con.execute("select count(*) from kpi_daily_history").fetchone()[0],
        )


def test_rerunning_an_as_of_replaces_it_and_never_duplicates(nightly_home: Path) -> None:
    nightly(as_of=TINY_END, models=[])
    first = published_state(nightly_home)
    second_run = nightly(as_of=TINY_END, models=[])
    assert published_state(nightly_home) == first
    partitions = sorted(p.name for p in (nightly_home / "exports" / "kpi_daily").iterdir())
    assert partitions == ["_columns", f"as_of={TINY_END.isoformat()}"]  # nothing hidden left
    with marts(nightly_home) as con:
        assert con.execute("select count(*), count(distinct run_id) from runs").fetchone() == (2, 2)
        assert con.execute("select distinct run_id from kpi_daily").fetchall() == [
            (second_run["run_id"],)
        ]


def test_each_night_adds_a_history_partition_and_nights_beyond_the_kept_ones_go(
    nightly_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NIGHTSHIFT_EXPORT_NIGHTS_KEPT", "2")
    for days_before in (2, 1, 0):
        nightly(as_of=TINY_END - timedelta(days=days_before), models=[])
    with marts(nightly_home) as con:
        nights = con.execute(
            "select as_of, count(*) from kpi_daily_history group by as_of order by as_of"
        ).fetchall()
        current = con.execute("select distinct as_of from kpi_daily").fetchall()
    assert [n[0] for n in nights] == [TINY_END - timedelta(days=1), TINY_END]
    assert nights[1][1] == nights[0][1] + 1  # one more day of KPIs
    assert current == [(TINY_END,)]
    kept = sorted(p.name for p in (nightly_home / "exports" / "kpi_daily").iterdir())
    assert kept == ["_columns", f"as_of={TINY_END - timedelta(days=1)}", f"as_of={TINY_END}"]


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_failed_run_leaves_yesterdays_marts_untouched(nightly_home: Path) -> None:
    from mlflow import MlflowClient

    nightly(as_of=TINY_END - timedelta(days=1), models=[])
    before = file_digest(nightly_home / "marts.duckdb")
    (nightly_home / "landing" / "orders" / "zz_bad.csv").write_text("order_id,quantity\nA,1\n")
    with pytest.raises(ContractError, match="zz_bad.csv"):
        nightly(as_of=TINY_END, models=[])
    assert file_digest(nightly_home / "marts.duckdb") == before
    assert not list((nightly_home / "exports" / "kpi_daily").glob(f"*{TINY_END.isoformat()}*"))
    with open_warehouse(settings_at(nightly_home), read_only=True) as con:
        status, error, mlflow_run_id = con.execute(
            "select status, error, mlflow_run_id from meta.runs where as_of = $d", {"d": TINY_END}
        ).fetchone()
    assert status == "failed" and "zz_bad.csv" in error
    client = MlflowClient(tracking_uri=settings_at(nightly_home).tracking_uri)
    assert client.get_run(mlflow_run_id).info.status == "FAILED"


def test_a_night_whose_new_rows_are_mostly_quarantined_stops_before_modelling(
    nightly_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed whose timestamp layout changed: every new order is quarantined, so the KPIs
    would say the day hardly sold. The night stops after ingest and publishes nothing; with
    the check off, the same night publishes."""
    from nightshift.freshness import QuarantineShareError

    nightly(as_of=TINY_END - timedelta(days=1), models=[])
    before = file_digest(nightly_home / "marts.duckdb")
    header = "order_id,line_no,customer_id,sku,quantity,unit_price,ordered_at,country"
    lines = [f"N{i},1,C1,SKU1,1,2.50,{TINY_END:%d/%m/%Y} 10:{i % 60:02d},UK" for i in range(150)]
    (nightly_home / "landing" / "orders" / "zz_new_layout.csv").write_text(
        "\n".join([header, *lines]) + "\n"
    )
    with pytest.raises(QuarantineShareError, match=r"orders: 150 of the 150 rows loaded tonight"):
        nightly(as_of=TINY_END, models=[])
    assert file_digest(nightly_home / "marts.duckdb") == before
    with open_warehouse(settings_at(nightly_home), read_only=True) as con:
        status, error = con.execute(
            "select status, error from meta.runs where as_of = $d", {"d": TINY_END}
        ).fetchone()
    assert status == "failed" and "(bad_timestamp 150)" in error
    monkeypatch.setenv("NIGHTSHIFT_MAX_QUARANTINE_SHARE", "1")
    assert nightly(as_of=TINY_END, models=[])["status"] == "succeeded"


def test_a_night_long_after_the_newest_order_stops_before_modelling(nightly_home: Path) -> None:
    """A stalled feed, or historical data run without --as-of: the night fails after ingest
    with the date to run, and publishes nothing."""
    from nightshift.freshness import StaleDataError

    nightly(as_of=TINY_END, models=[])
    before = file_digest(nightly_home / "marts.duckdb")
    stale = TINY_END + timedelta(days=15)
    with pytest.raises(StaleDataError, match=f"from {TINY_END}, 15 days earlier"):
        nightly(as_of=stale, models=["segments"])
    assert file_digest(nightly_home / "marts.duckdb") == before
    with open_warehouse(settings_at(nightly_home), read_only=True) as con:
        status, error = con.execute(
            "select status, error from meta.runs where as_of = $d", {"d": stale}
        ).fetchone()
    assert status == "failed" and f"run --as-of {TINY_END}" in error
    # doctor shows the on-call engineer both: the data's age and the failed night
    checked = subprocess.run(
        [sys.executable, "-m", "nightshift.cli", "doctor", "--home", str(nightly_home)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    doctor = checked.stdout
    assert f".. {TINY_END}: " in doctor and "STALE (over 14)" in doctor  # today is years later
    assert f"for {stale}: failed" in doctor and "StaleDataError" in doctor
    assert checked.returncode == 1 and "problems: data, last run" in checked.stderr
    # up to NIGHTSHIFT_MAX_DATA_AGE_DAYS (14) after the newest order, a night runs
    assert nightly(as_of=TINY_END + timedelta(days=14), models=[])["status"] == "succeeded"


ANALYST = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    query = "select any_value(as_of)::varchar, count(*) from kpi_daily"
    print("before", *con.execute(query).fetchone(), flush=True)
    sys.stdin.readline()
    print("during", *con.execute(query).fetchone(), flush=True)
    con.close()  # DuckDB shares one instance per path while any connection is open
    fresh = duckdb.connect(sys.argv[1], read_only=True)
    print("fresh", *fresh.execute(query).fetchone(), flush=True)
    """
)


def test_an_open_analyst_connection_keeps_reading_yesterday(nightly_home: Path) -> None:
    yesterday = TINY_END - timedelta(days=1)
    nightly(as_of=yesterday, models=[])
    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(nightly_home / "marts.duckdb")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert analyst.stdout.readline().split()[:2] == ["before", yesterday.isoformat()]
        nightly(as_of=TINY_END, models=[])
        out, _ = analyst.communicate("go\n", timeout=60)
    finally:
        analyst.kill()
    lines = [line.split() for line in out.splitlines()]
    assert lines[0][:2] == ["during", yesterday.isoformat()]  # the old file, whole
    assert lines[1][:2] == ["fresh", TINY_END.isoformat()]  # reconnecting sees tonight's


def test_unknown_models_and_future_dates_are_refused_before_any_work(nightly_home: Path) -> None:
    # Prefect validates the typed parameter (the UI's choice list) before the flow starts
    from prefect.exceptions import ParameterTypeError

    with pytest.raises(ParameterTypeError, match="should be 'recommender', 'demand'"):
        nightly(as_of=TINY_END, models=["telepathy"])
    with pytest.raises(ConfigError, match="unknown model"):
        selected_models(["telepathy"])
    with pytest.raises(ConfigError, match="in the future"):
        nightly(as_of=date.today() + timedelta(days=3))
    assert not (nightly_home / "marts.duckdb").exists()


def test_flow_parameters_render_as_a_typed_form() -> None:
    from prefect.utilities.callables import parameter_schema

    schema = parameter_schema(nightly.fn).model_dump()
    props = schema["properties"]
    assert any(option.get("format") == "date" for option in props["as_of"]["anyOf"])
    assert props["full_refresh"]["type"] == "boolean"
    assert props["models"]["anyOf"][0]["type"] == "array"


def test_the_run_leaves_a_summary_kpis_and_progress_in_prefect(nightly_home: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        TaskRunFilter,
    )
    from prefect.client.schemas.sorting import ArtifactSort

    (nightly_home / "landing" / "orders" / "2024-07.xlsx").write_bytes(b"PK")  # not read
    result = nightly(as_of=TINY_END, models=[])
    assert result["files_not_read"] == {
        "orders/2024-07.xlsx": "not a landing file: the names read end in .csv, .csv.gz, .parquet"
    }
    with marts(nightly_home) as con:
        flow_run_id = con.execute(
            "select flow_run_id from runs where run_id = $r", {"r": result["run_id"]}
        ).fetchone()[0]
    with get_client(sync_client=True) as client:
        # Prefect 3.8's sync client sends null for unset fields, which its server rejects.
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])),
            flow_run_filter=FlowRunFilter(),
            task_run_filter=TaskRunFilter(),
            sort=ArtifactSort.CREATED_DESC,
            limit=50,
            offset=0,
        )
    by_type = {a.type: a for a in artifacts}
    assert {"markdown", "table", "progress"} <= set(by_type)
    summary = next(a for a in artifacts if a.key == "nightly-summary")
    assert result["run_id"] in summary.data and "quarantine reason" in summary.data
    assert "- `landing/orders/2024-07.xlsx`: not a landing file" in summary.data
    assert by_type["progress"].data == 100.0  # every landing file loaded


def test_nightshift_run_on_a_terminal_draws_bars_for_loading_and_training(
    nightly_home: Path,
) -> None:
    """What `nightshift run` does on a terminal: the flow runs in the CLI's process and its
    long steps draw rich bars beside their Prefect progress artifacts."""
    import io

    from rich.console import Console

    from nightshift.cli import run_with_terminal_progress
    from nightshift.runlog import _terminal

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    result = run_with_terminal_progress(
        lambda: nightly(as_of=TINY_END, models=["recommender"]), console
    )
    text = out.getvalue()
    assert result["published"]
    assert "landing files" in text and "recommender epochs" in text
    assert text.count("100%") >= 2  # both bars finished
    plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", text)
    assert "recommender epoch 1:" in plain  # Prefect's log lines print above the bars
    assert _terminal["console"] is None and _terminal["bar"] is None  # nothing left drawing
