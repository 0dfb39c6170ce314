"""Faults a production night must survive, for real: a run killed with SIGKILL or stopped
with SIGTERM mid-training, and the same night run again. Real Prefect (the session's API), DuckDB files and MLflow."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from flows.nightly import MODEL_BRANCHES, nightly
from nightshift.runlog import task_run_spans
from tests.conftest import TINY_END, settings_at, table_checksum
from tests.integration.conftest import SHORT_TRAINING

pytestmark = pytest.mark.integration

# Columns that name a run or a registry version: they differ between two runs by design.
LINEAGE = ("run_id", "mlflow_run_id", "model", "flow_run_id")


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def published_tables(path: Path) -> dict[str, str]:
    """Checksum of every published table's content without lineage (runs excluded)."""
    with duckdb.connect(str(path), read_only=True) as con:
        names = [
            row[0]
            for row in con.execute(
                "select table_name from duckdb_tables() where schema_name = 'main' "
                "and table_name <> 'runs' order by 1"
            ).fetchall()
        ]
        return {name: table_checksum(con, f"main.{name}", exclude=LINEAGE) for name in names}


def history_partitions(home: Path) -> dict[str, list[str]]:
    return {
        table.name: sorted(p.name for p in table.iterdir())
        for table in sorted((home / "exports").iterdir())
    }


def kill_during_training(
    home: Path, marker: str, timeout: float = 300, sig: signal.Signals = signal.SIGKILL
) -> tuple[str, int]:
    """Start `nightshift run` in its own process against this session's Prefect API, wait
    for `marker` in its log, send it `sig`, and return what it printed and its exit code."""
    from prefect.settings import get_current_settings

    env = {
        **os.environ,
        "NIGHTSHIFT_HOME": str(home),
        "PREFECT_API_URL": str(get_current_settings().api.url),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "nightshift.cli", "run", "--as-of", TINY_END.isoformat()],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if marker in line:
                os.kill(proc.pid, sig)
                if sig != signal.SIGKILL:
                    seen.extend(proc.stdout)  # what it says while it stops
                break
            if time.monotonic() > deadline:
                break
    finally:
        if proc.poll() is None and not any(marker in line for line in seen):
            proc.kill()
        proc.wait(timeout=60)
    output = "".join(seen)
    assert any(marker in line for line in seen), f"never saw {marker!r}:\n{output[-3000:]}"
    return output, proc.returncode


def branch_spans(marts_path: Path, run_id: str) -> dict[str, tuple[datetime, datetime]]:
    """(start, end) of each branch's task run in the night's Prefect flow run."""
    with duckdb.connect(str(marts_path), read_only=True) as con:
        (flow_run_id,) = con.execute(
            "select flow_run_id from runs where run_id = $r", {"r": run_id}
        ).fetchone()
    spans = task_run_spans(flow_run_id)
    return {name: span for name, span in spans.items() if name in MODEL_BRANCHES}


def test_a_killed_run_changes_nothing_and_a_rerun_reproduces_the_night(
    nightly_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Short training (the subprocess inherits these): this test is about faults, not fit.
    # All five branches at once: the rerun must reproduce the night even when they overlap.
    for name, value in {**SHORT_TRAINING, "NIGHTSHIFT_BRANCH_CONCURRENCY": "5"}.items():
        monkeypatch.setenv(name, value)
    settings = settings_at(nightly_home)
    first = nightly(as_of=TINY_END)
    assert first["status"] in {"succeeded", "degraded"}
    before_bytes = file_sha256(settings.marts_path)
    before_tables = published_tables(settings.marts_path)
    before_partitions = history_partitions(nightly_home)
    assert {"recommendations", "demand_forecast", "inventory_plan", "customer_segments"} <= set(
        before_tables
    )

    # SIGKILL while the recommender is training: nothing published, nothing half-written
    _, returncode = kill_during_training(nightly_home, "recommender epoch 1:")
    assert returncode == -signal.SIGKILL
    assert file_sha256(settings.marts_path) == before_bytes
    assert published_tables(settings.marts_path) == before_tables  # readable and consistent
    assert history_partitions(nightly_home) == before_partitions

    # the next run completes, records the killed one as abandoned, and publishes the same
    # night identically: same rows in every table, no duplicate history partitions
    second = nightly(as_of=TINY_END)
    assert second["status"] == first["status"]
    spans = branch_spans(settings.marts_path, second["run_id"])
    # the two torch branches overlapped (the recommender's model export beside demand's fit)
    assert spans["recommender"][0] < spans["demand"][1], spans
    assert spans["demand"][0] < spans["recommender"][1], spans
    assert published_tables(settings.marts_path) == before_tables
    assert history_partitions(nightly_home) == before_partitions
    with duckdb.connect(str(settings.marts_path), read_only=True) as con:
        statuses = dict(con.execute("select status, count(*) from runs group by 1").fetchall())
        killed, killed_flow_run = con.execute(
            "select mlflow_run_id, flow_run_id from runs where status = 'abandoned'"
        ).fetchone()
    assert statuses.get("abandoned") == 1, statuses
    assert sum(statuses.values()) == 3
    # its MLflow runs no longer show as running: the night and the recommender it was training
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    parent = client.get_run(killed)
    assert (parent.info.status, parent.data.tags["nightshift.status"]) == ("KILLED", "abandoned")
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{killed}'"
    )
    assert {c.data.tags["nightshift.branch"]: c.info.status for c in children}["recommender"] == (
        "KILLED"
    )
    running = client.search_runs([parent.info.experiment_id], "attributes.status = 'RUNNING'")
    assert running == []
    # nor does its Prefect flow run
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as prefect:
        assert prefect.read_flow_run(killed_flow_run).state.type.value == "CRASHED"
        # nor its task runs: the recommender's was Running for good
        from tasks.runs import unfinished_task_runs

        assert unfinished_task_runs(prefect, killed_flow_run) == []
        from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId
        from prefect.client.schemas.sorting import TaskRunSort

        of_killed = TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[killed_flow_run]))
        states = {
            t.name.rsplit("-", 1)[0]: t.state.type.value
            for t in prefect.read_task_runs(
                task_run_filter=of_killed, sort=TaskRunSort.ID_DESC, limit=200
            )
        }
        assert states["recommender"] == "CRASHED", states


def test_a_night_stopped_with_sigterm_closes_its_run_and_stops_its_branches(
    nightly_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM is how a cancelled deployment run, `timeout` or a service manager stops a
    night. Prefect turns it into an exception, so unlike SIGKILL the night closes its own
    run: failed, with the signal named for whoever is paged (it used to say only
    "TerminationSignal: "), its MLflow run failed too, and nothing published.

    The signal reaches the flow's thread only: with all five branches at once, the demand
    branch, on the flow's thread pool, used to train on and register its model after the
    night had closed. It now stops at its next epoch."""
    from mlflow.tracking import MlflowClient

    for name, value in {**SHORT_TRAINING, "NIGHTSHIFT_BRANCH_CONCURRENCY": "5"}.items():
        monkeypatch.setenv(name, value)
    settings = settings_at(nightly_home)
    output, returncode = kill_during_training(nightly_home, "demand epoch 1:", sig=signal.SIGTERM)
    assert returncode != 0, output[-3000:]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        runs = con.execute("select status, error, mlflow_run_id from meta.runs").fetchall()
    assert [(status, error) for status, error, _ in runs] == [
        ("failed", "TerminationSignal: stopped by SIGTERM")
    ], output[-3000:]
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    parent = client.get_run(runs[0][2])
    assert parent.info.status == "FAILED"
    (demand,) = client.search_runs(
        [parent.info.experiment_id], filter_string="tags.`nightshift.branch` = 'demand'"
    )
    assert demand.info.status == "FAILED", output[-3000:]
    assert "demand epoch 3:" not in output
    assert client.search_model_versions("name = 'nightshift-demand'") == []
    # the first night of this home: no marts, no exports, no half-written temporary file
    assert not settings.marts_path.exists()
    assert not (nightly_home / "exports").exists()
    assert list(nightly_home.glob("*.tmp")) == []


def test_branches_run_together_when_allowed_and_pricing_waits_for_demand(
    nightly_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**SHORT_TRAINING, "NIGHTSHIFT_BRANCH_CONCURRENCY": "3"}.items():
        monkeypatch.setenv(name, value)
    result = nightly(as_of=TINY_END, models=["demand", "segments", "pricing"])
    assert result["status"] == "succeeded"
    spans = branch_spans(settings_at(nightly_home).marts_path, result["run_id"])
    # demand and segments overlapped; pricing started only once demand had finished
    assert spans["segments"][0] < spans["demand"][1] and spans["demand"][0] < spans["segments"][1]
    assert spans["pricing"][0] >= spans["demand"][1], spans


def test_one_lane_runs_the_branches_in_the_flows_own_thread(prefect_api: None) -> None:
    """With one lane the branches run one after another in the flow's thread, not each in a
    new pool thread: every thread that computes with torch keeps its own OpenMP team, and
    with two teams alive on 2 cores the LSTM's epochs took 1.5x as long. A failing branch is
    still recorded and the next one still runs; with two lanes they go to the pool."""
    import threading

    from prefect import flow, task

    from flows.nightly import run_local_branches

    threads: dict[str, int] = {}

    def branch(name: str, fails: bool = False):  # noqa: ANN202 - a Prefect task
        @task(name=f"test-branch-{name}")
        def run(settings: object, context: object) -> str:
            threads[name] = threading.get_ident()
            if fails:
                raise RuntimeError(f"{name} broke")
            return name

        return run

    branches = {"first": branch("first"), "broken": branch("broken", True), "last": branch("last")}

    @flow(name="test-lanes")
    def lanes(count: int) -> tuple[dict[str, object], dict[str, str]]:
        threads["flow"] = threading.get_ident()
        failures: dict[str, str] = {}
        outcomes = run_local_branches(
            None, None, branches, count, lambda name, exc: failures.__setitem__(name, str(exc))
        )
        return outcomes, failures

    outcomes, failures = lanes(1)
    assert outcomes == {"first": "first", "last": "last"}
    assert failures == {"broken": "broken broke"}
    assert threads["first"] == threads["broken"] == threads["last"] == threads["flow"]

    threads.clear()
    outcomes, failures = lanes(2)
    assert outcomes == {"first": "first", "last": "last"}
    assert failures == {"broken": "broken broke"}
    assert threads["flow"] not in {threads["first"], threads["broken"], threads["last"]}


def test_a_night_that_fails_to_publish_moves_no_champion(
    nightly_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The champion alias names the model behind the published tables: a night whose
    branches registered and passed their gates, but which then failed to publish (the disk
    filled, say), leaves every champion where the last published night put it."""
    from mlflow import MlflowClient

    import flows.nightly

    nightly(as_of=TINY_END - timedelta(days=1), models=["segments"])
    client = MlflowClient(tracking_uri=settings_at(nightly_home).tracking_uri)
    champion = client.get_model_version_by_alias("nightshift-segments", "champion").version

    def disk_full(*args: object, **kwargs: object) -> list[str]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(flows.nightly, "publish_marts", disk_full)
    with pytest.raises(OSError, match="No space left"):
        nightly(as_of=TINY_END, models=["segments"])
    versions = client.search_model_versions("name = 'nightshift-segments'")
    assert len(versions) == 2  # tonight's model was registered, and passed its gate
    tonight = max(versions, key=lambda v: int(v.version))
    assert client.get_run(tonight.run_id).data.metrics["promoted"] == 1.0
    assert client.get_model_version_by_alias("nightshift-segments", "champion").version == (
        champion
    )


def test_a_night_whose_failure_cannot_be_logged_to_mlflow_still_ends_with_its_own_error(
    nightly_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk fails MLflow's SQLite store too. Closing the MLflow run of a failed night
    then raised, and the night ended with MLflow's error instead of its own."""
    import flows.nightly

    def disk_full(*args: object, **kwargs: object) -> list[str]:
        raise OSError(28, "No space left on device")

    def store_full(*args: object, **kwargs: object) -> None:
        raise RuntimeError("(sqlite3.OperationalError) database or disk is full")

    monkeypatch.setattr(flows.nightly, "publish_marts", disk_full)
    monkeypatch.setattr(flows.nightly, "finish_parent_run", store_full)
    with pytest.raises(OSError, match="No space left"):
        nightly(as_of=TINY_END, models=["segments"])
    with duckdb.connect(str(settings_at(nightly_home).warehouse_path), read_only=True) as con:
        status, error = con.execute(
            "select status, error from meta.runs order by started_at desc limit 1"
        ).fetchone()
    assert status == "failed" and "No space left on device" in error


def test_a_damaged_marts_file_is_named_and_the_next_night_publishes_a_whole_one(
    nightly_home: Path,
) -> None:
    """marts.duckdb cut short (a restore or copy that did not finish) was a DuckDB traceback
    for analysts, and failed every night's publish, which carries tables over from it.
    Queries now name the damage, and the night carries over from its own copy of the last
    publish."""
    from nightshift.catalog import open_marts
    from nightshift.warehouse import DamagedFileError

    settings = settings_at(nightly_home)
    yesterday = TINY_END - timedelta(days=1)
    assert nightly(as_of=yesterday, models=["segments"])["status"] == "succeeded"
    marts = settings.marts_path
    marts.write_bytes(marts.read_bytes()[:100])
    with pytest.raises(DamagedFileError, match="marts.duckdb is damaged .* publishes a whole"):
        open_marts(marts)

    tonight = nightly(as_of=TINY_END, models=[])  # KPIs only: the segments are carried over
    assert tonight["status"] == "succeeded", tonight
    assert "customer_segments" in tonight["published"]
    with duckdb.connect(str(marts), read_only=True) as con:
        assert con.execute("select max(date) from kpi_daily").fetchone()[0] == TINY_END
        (segments_night,) = con.execute("select distinct as_of from customer_segments").fetchone()
    assert segments_night == yesterday


class StoppedBySigterm(BaseException):
    """What this process's SIGTERM handler raises in a test that stops a night in-process."""


def test_a_stop_duckdb_swallowed_in_a_branch_stops_the_night_instead_of_degrading_it(
    nightly_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGTERM that lands while DuckDB runs a query comes out of the query as
    RuntimeError('Query interrupted'), the handler's exception dropped
    (tests/unit/test_stopping.py shows it with a real query and signal). Raised in a branch,
    it was taken for a failed branch: the night published the rest and ended degraded, as
    if never asked to stop. Here the branch raises that error itself, in the flow's real
    Prefect engine; the signal it stands for is delivered again, the night crashes as a
    SIGTERM'd one does, and Prefect hands the signal on to this process's own handler."""

    def stopped(signum: int, frame: object) -> None:
        raise StoppedBySigterm(signum)

    def interrupted_query(settings: object, run: object) -> None:
        raise RuntimeError("Query interrupted")

    monkeypatch.setitem(MODEL_BRANCHES, "segments", interrupted_query)
    previous = signal.signal(signal.SIGTERM, stopped)
    try:
        with pytest.raises(StoppedBySigterm):
            nightly(as_of=TINY_END, models=["segments"])
    finally:
        signal.signal(signal.SIGTERM, previous)
    settings = settings_at(nightly_home)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        runs = con.execute("select status, error from meta.runs").fetchall()
    assert runs == [("failed", "TerminationSignal: stopped by SIGTERM")]
    assert not settings.marts_path.exists()  # nothing published


def test_a_warehouse_built_again_keeps_the_published_run_history(nightly_home: Path) -> None:
    """A lost (or damaged, moved aside) warehouse is built again from the raw archive, but
    its run log was not: the published `runs` table started afresh with the rebuild. The
    new warehouse now takes back the finished runs the last publish holds."""
    settings = settings_at(nightly_home)
    first = nightly(as_of=TINY_END - timedelta(days=1), models=["segments"])
    warehouse = settings.warehouse_path
    warehouse.rename(warehouse.with_name("warehouse.duckdb.damaged"))

    second = nightly(as_of=TINY_END, models=[])
    assert second["status"] == "succeeded", second
    with duckdb.connect(str(settings.marts_path), read_only=True) as con:
        runs = con.execute("select run_id, status, models from runs order by started_at")
        assert runs.fetchall() == [
            (first["run_id"], "succeeded", ["segments"]),
            (second["run_id"], "succeeded", []),
        ]


def test_a_branch_registers_no_model_once_its_night_has_ended(
    prefect_api: None, tmp_path: Path
) -> None:
    """A branch without progress reports (segments) ran to its end after a stop and
    registered a version of a night that published nothing. Registering now checks the
    night first, on both routes: an artifact folder and a flavor's log_model."""
    from prefect import flow, task
    from prefect.context import TaskRunContext

    from nightshift.runlog import NightEnded, stop_the_work_of
    from tasks.tracking import (
        log_registered_model,
        register_artifacts,
        start_parent_run,
        tracking_client,
    )

    settings = settings_at(tmp_path)
    parent = start_parent_run.fn(settings, "run-1", TINY_END, "flow-1", params={})

    def never_called() -> object:
        raise AssertionError("a flavor's log_model ran after the night ended")

    @task(name="test-register")
    def register(night_ended: bool) -> str:
        if night_ended:
            stop_the_work_of(str(TaskRunContext.get().task_run.flow_run_id))
            with pytest.raises(NightEnded, match="registering a model version"):
                log_registered_model(settings, parent, never_called)
        return register_artifacts(settings, parent, "model", "nightshift-test")

    @flow(name="test-night")
    def night(night_ended: bool) -> str:
        return register(night_ended)

    assert night(False) == "1"
    with pytest.raises(NightEnded, match="registering a model version: not done"):
        night(True)
    assert night(False) == "2"  # another night registers as before
    versions = tracking_client(settings).search_model_versions("name = 'nightshift-test'")
    assert sorted(int(v.version) for v in versions) == [1, 2]


def export_files(home: Path) -> dict[str, str]:
    """Every file under exports/ (hidden ones too) with its SHA-256."""
    root = home / "exports"
    return {
        str(p.relative_to(root)): file_sha256(p) for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_a_night_that_fails_while_publishing_leaves_the_exports_as_published(
    nightly_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export partitions and the `_history` views over them are published data too. A
    night that failed after writing its partitions but before the marts were replaced left
    them in place: history showed a night that `runs` calls failed, and a rerun of a
    published night replaced its partitions with rows the marts never had. Partitions now
    take their place only once the marts have; the next night clears what a failed one
    left."""
    import tasks.publish

    first, second = TINY_END - timedelta(days=1), TINY_END
    nightly(as_of=first, models=["segments"])
    published = export_files(nightly_home)
    marts = settings_at(nightly_home).marts_path
    marts_before = file_sha256(marts)

    def disk_full(*args: object, **kwargs: object) -> list[str]:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:  # after tonight's partitions, before the commit
        patch.setattr(tasks.publish, "carry_over", disk_full)
        for night in (second, first):  # a new night, and a rerun of the published one
            with pytest.raises(OSError, match="No space left"):
                nightly(as_of=night, models=["segments"])
            # what it wrote is gone at once, not at the next publish: the disk may be full
            assert not list(nightly_home.glob("marts.duckdb.tmp*"))
            assert [n for n in export_files(nightly_home) if "/." in n] == []
            assert not list((nightly_home / ".published").glob(".*"))
    visible = {
        name: sha
        for name, sha in export_files(nightly_home).items()
        if not name.startswith(".") and "/." not in name
    }
    assert visible == published
    assert file_sha256(marts) == marts_before
    with duckdb.connect(str(marts), read_only=True) as con:
        nights = con.execute("select distinct as_of from customer_segments_history").fetchall()
    assert nights == [(first,)]

    nightly(as_of=second, models=["segments"])  # the next night publishes and tidies up
    after = export_files(nightly_home)
    assert [name for name in after if name.startswith(".") or "/." in name] == []
    assert {name: sha for name, sha in after.items() if name in published} == published
    with duckdb.connect(str(marts), read_only=True) as con:
        nights = con.execute(
            "select as_of, count(distinct run_id) from customer_segments_history "
            "group by as_of order by as_of"
        ).fetchall()
    assert nights == [(first, 1), (second, 1)]


def sleepy_batch_fn(batch: int, markers: str) -> int:
    """Batch 0 fails once another batch runs beside it; the others work for a while, then
    leave a marker in `markers` (and one in `started` beside it when they start)."""
    started = Path(markers).with_name("started")
    if batch == 0:
        deadline = time.monotonic() + 60
        while not any(started.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(3)  # Prefect's server records a task run's start from an event, a moment later
        raise RuntimeError("batch 0 failed")
    (started / str(batch)).touch()
    time.sleep(10)
    (Path(markers) / str(batch)).touch()
    return batch


def test_a_failed_batch_ends_the_pool_instead_of_running_its_other_batches(
    prefect_api: None, tmp_path: Path
) -> None:
    """A night that ends while an inventory pool has batches in flight (a failed batch, a
    SIGTERM) ends its workers at once: the pool used to finish the batches already running
    and queued first (15 s after a SIGTERM on `small`), and a killed run's workers blocked
    for good. Real Prefect process pool; the markers say whether a batch ran to its end."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    from tasks.parallel import map_batches

    batch_task = task(name="sleepy-batch", cache_policy=NO_CACHE)(sleepy_batch_fn)
    done = tmp_path / "done"
    done.mkdir()
    (tmp_path / "started").mkdir()

    @flow
    def mapped() -> list[int]:
        return map_batches(batch_task, [0, 1, 2, 3], 2, None, lambda done: None,
                           markers=str(done))  # fmt: skip

    state = mapped(return_state=True)
    assert state.is_failed() and "batch 0 failed" in state.message, state
    assert any((tmp_path / "started").iterdir())  # a batch ran beside batch 0
    assert list(done.iterdir()) == []  # no batch ran on after the failure
    # and the batch its worker was running when the pool ended is not left Running in the UI
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId
    from prefect.client.schemas.sorting import TaskRunSort

    from tasks.runs import unfinished_task_runs

    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as prefect:
        assert unfinished_task_runs(prefect, str(flow_run_id)) == []
        batches = prefect.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id])),
            sort=TaskRunSort.ID_DESC,
            limit=10,
        )
    ended = [t.state.message for t in batches if t.state.is_crashed()]
    assert ended and all("the pool ended this batch" in m for m in ended), batches


# An analyst's session on the published marts, opened for writing as DuckDB's CLI and
# duckdb.connect do by default: prints the newest as_of it sees, then again when told.
ANALYST = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
newest = "select max(as_of) from customer_segments"
print(con.execute(newest).fetchone()[0], flush=True)
sys.stdin.readline()
print(con.execute(newest).fetchone()[0], flush=True)
"""


def test_an_analyst_holding_the_marts_open_for_writing_does_not_stop_the_night(
    nightly_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session that holds marts.duckdb for writing locks every other process out of that
    file, and the night reads the published marts (the tables it carries over, the last
    segments' names): a notebook left open overnight failed the next night. The night now
    reads its own copy of what it published, and the analyst keeps reading their file."""
    from nightshift.warehouse import FileInUseError, connect_file
    from tasks.publish import marts_identity

    for name, value in SHORT_TRAINING.items():
        monkeypatch.setenv(name, value)
    settings = settings_at(nightly_home)
    yesterday = TINY_END - timedelta(days=1)
    first = nightly(as_of=yesterday, models=["inventory", "segments"])
    assert first["status"] == "succeeded", first
    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(settings.marts_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert analyst.stdout is not None and analyst.stdin is not None
        assert analyst.stdout.readline().strip() == yesterday.isoformat()
        # what reading marts.duckdb itself now meets
        with pytest.raises(FileInUseError, match=rf"PID {analyst.pid}, .*read-only"):
            connect_file(settings.marts_path, read_only=True)

        second = nightly(as_of=TINY_END, models=["segments"])
        assert second["status"] == "succeeded", second
        assert "inventory_plan" in second["published"]  # carried over from the own copy
        with duckdb.connect(str(settings.marts_path), read_only=True) as con:
            assert con.execute("select max(as_of) from customer_segments").fetchone()[0] == TINY_END
            (inventory_night,) = con.execute("select distinct as_of from inventory_plan").fetchone()
        assert inventory_night == yesterday
        analyst.stdin.write("\n")
        analyst.stdin.flush()
        assert analyst.stdout.readline().strip() == yesterday.isoformat()  # still their file
    finally:
        analyst.kill()
        analyst.wait()
    # one own copy, of the file now published
    assert [p.name for p in settings.published_copy_dir.iterdir()] == [
        f"marts-{marts_identity(settings.marts_path)}.duckdb"
    ]
