"""The `nightshift` command as a user runs it, in subprocesses."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.conftest import process_ended
from tests.unit.test_online_retail import REAL_FILE

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "nightshift.cli"]


def nightshift(
    *args: str, home: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "NIGHTSHIFT_HOME": str(home), "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=environment, timeout=300
    )


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = nightshift("--help", home=tmp_path)
    assert result.returncode == 0
    for command in ("generate", "ingest", "run", "query", "doctor"):
        assert command in result.stdout


def test_a_commands_help_reads_its_docstring_as_prose(tmp_path: Path) -> None:
    """Docstrings wrap at 100 columns; the help must rejoin the lines, not break them there."""
    result = nightshift("doctor", "--help", home=tmp_path)
    assert result.returncode == 0
    assert "whether the configured servers answer, and whether the orders feed" in result.stdout


def test_help_does_not_import_heavy_libraries(tmp_path: Path) -> None:
    probe = "import sys, nightshift.cli; print(sorted(m for m in ('prefect', 'torch', 'mlflow', 'duckdb', 'polars') if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_generate_then_ingest_then_generate_if_missing(tmp_path: Path) -> None:
    made = nightshift("generate", "--profile", "tiny", "--end", "2024-06-30", home=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "planted dirty rows" in made.stdout
    again = nightshift("generate", "--profile", "tiny", "--if-missing", home=tmp_path)
    assert "not generating" in again.stdout
    (tmp_path / "landing" / "orders" / "export.xlsx").write_bytes(b"PK")
    loaded = nightshift("ingest", home=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert "quarantined orders:" in loaded.stdout and "duplicate" in loaded.stdout
    # a file that is in no table is named, to the shell and by doctor
    unread = "landing/orders/export.xlsx: not a landing file"
    assert f"not read: {unread}" in loaded.stderr
    doctor = nightshift("doctor", home=tmp_path)
    assert f"landing       NOT READ {unread}" in doctor.stdout
    assert doctor.returncode == 1  # that, and the shop ending in 2024 is stale by now
    assert doctor.stderr == "doctor found 2 problems: landing, data\n"

    # a file landed by mistake: moved out of landing/, then its rows taken out by name
    mistake = "orders/synthetic_orders_2024-03.csv"
    (tmp_path / "landing" / mistake).rename(tmp_path / "mistake.csv")
    kept = nightshift("ingest", home=tmp_path)
    assert "1 only in the raw archive" in kept.stdout
    doctor = nightshift("doctor", home=tmp_path)
    assert f", 1 no longer in landing/ ({mistake}): their rows stay" in doctor.stdout
    forgot = nightshift("ingest", "--forget", mistake, home=tmp_path)
    assert forgot.returncode == 0, forgot.stderr
    assert f"forgot {mistake}: its rows are no longer staged" in forgot.stdout
    again = nightshift("ingest", "--forget", mistake, home=tmp_path)
    assert again.returncode == 2
    assert f"error: cannot forget {mistake}: it is not a loaded file" in again.stderr

    # a synthetic shop is not written beside a shop's own files, where it would be ingested,
    # whether they are in landing/ or were loaded from there (the forgotten file is not)
    (tmp_path / "landing" / "orders" / "shop_export.csv").write_text("order_id\n")
    mixed = nightshift("generate", "--profile", "tiny", home=tmp_path)
    assert mixed.returncode == 2
    assert "loaded files that are not a synthetic shop's (orders/shop_export.csv)" in mixed.stderr
    shutil.move(tmp_path / "landing", tmp_path / "cleared")
    cleared = nightshift("generate", "--profile", "tiny", "--if-missing", home=tmp_path)
    assert "orders already loaded into the warehouse (5 files, e.g." in cleared.stdout
    assert not (tmp_path / "landing").exists()


def test_ingest_of_a_bad_file_is_one_clear_line(tmp_path: Path) -> None:
    folder = tmp_path / "landing" / "orders"
    folder.mkdir(parents=True)
    (folder / "broken.csv").write_text("order_id,sku\nA,B\n")
    result = nightshift("ingest", home=tmp_path)
    assert result.returncode == 2
    assert "error: orders/broken.csv: missing required column(s)" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_damaged_warehouse_is_one_clear_line_and_a_new_one_is_built(tmp_path: Path) -> None:
    """A warehouse cut short (a restore that did not finish) was a DuckDB traceback from
    ingest and from doctor. Moved aside, the next ingest builds it again from the archive."""
    made = nightshift("generate", "--profile", "tiny", "--end", "2024-06-30", home=tmp_path)
    assert made.returncode == 0, made.stderr
    assert nightshift("ingest", home=tmp_path).returncode == 0
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        staged = con.execute("select count(*) from staging.stg_orders").fetchone()[0]
    warehouse.write_bytes(warehouse.read_bytes()[:100])
    ingest = nightshift("ingest", home=tmp_path)
    assert ingest.returncode == 2 and "Traceback" not in ingest.stderr
    assert ingest.stderr.startswith(f"error: {warehouse} is damaged and cannot be read (it ends")
    doctor = nightshift("doctor", home=tmp_path)
    assert f"warehouse     {warehouse} is damaged and cannot be read" in doctor.stdout
    assert (
        doctor.returncode == 1 and "warehouse" in doctor.stderr and "Traceback" not in doctor.stderr
    )
    warehouse.rename(tmp_path / "warehouse.duckdb.damaged")
    rebuilt = nightshift("ingest", home=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "a new warehouse: took the 14 loaded files" in rebuilt.stderr
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from staging.stg_orders").fetchone()[0] == staged


def test_doctor_names_a_damaged_embedded_store(tmp_path: Path) -> None:
    """MLflow's SQLite store cut short failed every night at its first log call with
    SQLAlchemy's 'database disk image is malformed', naming no file; doctor now names it."""
    from tests.unit.test_orphaned_servers import a_prefect_like_database

    store = tmp_path / "mlflow" / "mlflow.db"
    store.parent.mkdir(parents=True)
    a_prefect_like_database(store)
    whole = nightshift("doctor", home=tmp_path)
    assert "mlflow" not in whole.stderr
    store.write_bytes(store.read_bytes()[: store.stat().st_size // 2])
    doctor = nightshift("doctor", home=tmp_path)
    assert doctor.returncode == 1 and "mlflow" in doctor.stderr.split(": ", 1)[1]
    assert (
        f"mlflow        {store} is damaged (database disk image is malformed): restore it "
        "from a backup" in doctor.stdout
    )


@pytest.mark.skipif(not REAL_FILE.exists(), reason="real Online Retail file not present")
def test_online_retail_ingest_prints_a_summary(tmp_path: Path) -> None:
    sample = tmp_path / "retail.parquet"
    pl.read_parquet(REAL_FILE, n_rows=2_000).write_parquet(sample)
    result = nightshift("ingest", "--source", "online-retail", str(sample), home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    assert "2,000" in result.stdout and "customers" in result.stdout


def test_query_is_read_only_and_speaks_csv_and_json(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    con = duckdb.connect(str(tmp_path / "marts.duckdb"))
    con.execute("create table kpi_daily as select date '2024-01-01' as date, 3 as orders")
    con.close()
    assert (
        nightshift("query", "select * from kpi_daily", "--format", "csv", home=tmp_path).stdout
        == "date,orders\n2024-01-01,3\n"
    )
    assert (
        '"orders": 3'
        in nightshift("query", "select * from kpi_daily", "--format", "json", home=tmp_path).stdout
    )
    refused = nightshift("query", "delete from kpi_daily", home=tmp_path)
    assert refused.returncode == 2 and "read-only" in refused.stderr
    # a long result is streamed: the table shows its first 50 rows and counts the rest
    shown = nightshift("query", "select range as n from range(70)", home=tmp_path).stdout
    assert "│ 49 │" in shown and "│ 50 │" not in shown
    assert "first 50 of 70 rows" in shown
    # a query that fails part-way is one clear line and leaves no file behind
    out = tmp_path / "out.csv"
    failing = "select cast(if(range > 300000, 'x', '1') as int) from range(400000)"
    failed = nightshift("query", failing, "--format", "csv", "--out", str(out), home=tmp_path)
    assert failed.returncode == 2
    assert failed.stderr.startswith("error: Conversion Error: Could not convert string 'x'")
    assert not out.exists() and not list(tmp_path.glob(".out.csv*"))
    # a reader that stops early (`| head`) ends the command quietly, without a traceback
    env = {**os.environ, "NIGHTSHIFT_HOME": str(tmp_path)}
    long_csv = [*CLI, "query", "select range from range(3000000)", "--format", "csv"]
    with subprocess.Popen(
        long_csv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    ) as head:
        assert head.stdout.readline() == b"range\n"
        head.stdout.close()
        assert head.wait(timeout=60) == 1
        assert head.stderr.read() == b""
    assert duckdb.connect(str(tmp_path / "marts.duckdb"), read_only=True).execute(
        "select count(*) from kpi_daily"
    ).fetchone() == (1,)


def test_doctor_reports_an_unreachable_server_clearly(tmp_path: Path) -> None:
    result = nightshift(
        "doctor",
        home=tmp_path,
        env={
            "NIGHTSHIFT_MLFLOW_URI": "http://127.0.0.1:9",
            "NIGHTSHIFT_DASK_ADDRESS": "tcp://127.0.0.1:9",
        },
    )
    assert "mlflow        http://127.0.0.1:9 DOES NOT ANSWER" in result.stdout
    assert "dask          tcp://127.0.0.1:9 DOES NOT ANSWER" in result.stdout
    assert "device        cpu" in result.stdout or "device        cuda" in result.stdout
    assert "data          no warehouse yet" in result.stdout
    # a monitor sees the problems in the exit code and one line naming them
    assert result.returncode == 1
    assert result.stderr == "doctor found 2 problems: mlflow, dask\n"
    assert nightshift("doctor", home=tmp_path).returncode == 0  # a fresh home is no problem


def test_run_stops_at_once_when_a_configured_server_does_not_answer(tmp_path: Path) -> None:
    """Without the check a night hung for minutes: MLflow's client retries a dead server
    for about four minutes a call, and the task twice more."""
    for env, name, remedy in (
        ({"NIGHTSHIFT_MLFLOW_URI": "http://127.0.0.1:9"}, "mlflow", "NIGHTSHIFT_MLFLOW_URI"),
        ({"PREFECT_API_URL": "http://127.0.0.1:9/api"}, "prefect", "PREFECT_API_URL"),
    ):
        result = nightshift("run", home=tmp_path, env=env)
        assert result.returncode == 2
        assert result.stderr.startswith(f"error: the {name} server at http://127.0.0.1:9")
        assert "does not answer" in result.stderr and f"or unset {remedy}" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "warehouse.duckdb").exists()  # nothing was started


# `nightshift run` in a fresh interpreter, counting the Prefect API servers it starts and
# noting whether the flows had finished importing when one started.
COUNT_API_STARTS = """
import subprocess, sys
starts = []
class Counting(subprocess.Popen):
    def __init__(self, args, *rest, **options):
        if "uvicorn" in args:
            flows = sys.modules.get("flows.nightly")
            starts.append("flows imported" if hasattr(flows, "nightly") else "while importing")
        super().__init__(args, *rest, **options)
subprocess.Popen = Counting
from nightshift.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    print("API_STARTS", starts)
"""


def test_run_without_a_prefect_server_starts_prefects_api_once_and_early(
    tmp_path: Path,
) -> None:
    """`make run`'s path: no Prefect server configured, so `nightshift run` starts Prefect's
    ephemeral API itself, before importing the flows so that it comes up meanwhile
    (nightshift.prefect_api), and the flow uses that same server, not a second one. The
    home is empty: `--profile tiny` passes the flow's parameter, which generates the shop."""
    from tests.conftest import TINY_END

    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"NIGHTSHIFT_HOME": str(home), "COLUMNS": "200"})
    result = subprocess.run(
        [sys.executable, "-c", COUNT_API_STARTS, "run", "--as-of", TINY_END.isoformat(),
         "--models", "segments", "--profile", "tiny"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "API_STARTS ['while importing']" in result.stdout, output[-3000:]
    assert (home / "prefect").is_dir()  # the home's own Prefect database
    assert sorted(p.name for p in (home / "landing").iterdir()) == [
        "events", "inventory", "orders", "products"
    ]  # fmt: skip
    with duckdb.connect(str(home / "marts.duckdb"), read_only=True) as con:
        (segments,) = con.execute("select count(*) from customer_segments").fetchone()
        (source,) = con.execute("select source from runs").fetchone()
    assert segments > 0
    assert source == "landing"


def test_a_night_with_a_failed_branch_publishes_the_rest_and_exits_3(tmp_path: Path) -> None:
    """A scheduler or script that only sees the exit code must not take a degraded night for
    a good one. CUDA is asked for on a machine without it, so the recommender fails at once;
    the segments still publish, and the failed branch is named on stderr, as is a file that
    landed beside orders/ instead of in it."""
    from tests.conftest import TINY_END

    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "orders.csv").write_text("order_id\n")  # beside, not in, orders/
    result = nightshift(
        "run", "--as-of", TINY_END.isoformat(), "--models", "recommender,segments",
        "--profile", "tiny", home=tmp_path, env={"NIGHTSHIFT_DEVICE": "cuda"},
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 3, output[-3000:]
    assert "degraded: branch recommender failed, its tables keep their last rows: " in (
        result.stderr
    ), output[-3000:]
    assert "CUDA is not available" in result.stderr
    assert "published customer_segments" in result.stdout
    assert "not read: landing/orders.csv: directly in landing/" in result.stderr
    with duckdb.connect(str(tmp_path / "marts.duckdb"), read_only=True) as con:
        (status,) = con.execute("select status from runs").fetchone()
        (segments,) = con.execute("select count(*) from customer_segments").fetchone()
    assert status == "degraded"
    assert segments > 0


def test_run_refuses_data_options_that_cannot_go_together(tmp_path: Path) -> None:
    """The flow's own refusal, as one clear line before any night starts."""
    result = nightshift("run", "--source", "online-retail", home=tmp_path)
    assert result.returncode == 2
    assert "error: source online-retail needs source_path" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "marts.duckdb").exists()


def wait_for(check: Callable[[], bool], what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_stopped_or_killed_run_leaves_no_prefect_api_server_behind(tmp_path: Path) -> None:
    """Without a Prefect server configured, `nightshift run` starts Prefect's API in a
    subprocess that only an exit hook stopped. A night killed outright (SIGKILL, the OOM
    killer) left it running for good, and so did one stopped with SIGTERM (`timeout`, a
    service manager), whose default action skips exit hooks: 250 MB each, still writing the
    home's Prefect database. Now doctor names a killed run's server, the next run stops it
    and says so, and a stopped run stops its own, exiting 143 (128 + SIGTERM) as a
    signalled program does. The signal goes to the run's whole process group, as `timeout`
    and systemd send it: the server, which shared the group, died with the night, and the
    night spent minutes retrying it to report its crash."""
    from tests.conftest import TINY_END

    home = tmp_path / "home"
    records = home / "prefect" / "servers"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"NIGHTSHIFT_HOME": str(home), "COLUMNS": "200"})
    night = [*CLI, "run", "--as-of", TINY_END.isoformat(), "--models", "segments",
             "--profile", "tiny"]  # fmt: skip

    killed = subprocess.Popen(night, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: records.is_dir() and any(records.iterdir()), "the first server's record")
    finally:
        killed.kill()
        killed.wait()
    (left,) = (int(p.stem) for p in records.iterdir())
    assert not process_ended(left)  # outlived its run
    doctor = subprocess.run([*CLI, "doctor"], capture_output=True, text=True, env=env, timeout=120)
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    assert f"a Prefect API server (pid {left}) that a killed run left is still running" in (
        doctor.stdout
    )

    log = tmp_path / "second.log"
    with log.open("w") as out:
        second = subprocess.Popen(
            night, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_for(lambda: "Beginning flow run" in log.read_text(), "the second night's flow")
            (own,) = (int(p.stem) for p in records.iterdir())
            os.killpg(second.pid, signal.SIGTERM)  # the whole group, as timeout and systemd do
            second.wait(timeout=120)
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
    output = log.read_text()
    assert f"stopped a Prefect API server (pid {left}) that a killed run had left running" in (
        output
    )
    assert second.returncode == 128 + signal.SIGTERM, output[-3000:]
    # its server, in a session of its own, outlived the signal until the night had reported
    assert "Finished in state Crashed('Execution was aborted by a termination signal.')" in (
        output
    ), output[-3000:]
    assert "Error logging to API" not in output and "ConnectError" not in output, output[-3000:]
    assert own != left
    assert process_ended(left, timeout=15) and process_ended(own, timeout=15)
    assert list(records.iterdir()) == []
