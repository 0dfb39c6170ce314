"""Prefect API servers left by killed runs: found from their records and stopped, while a
live run's server and a reused pid are left alone. Real processes, no Prefect."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import psutil

from nightshift.prefect_api import (
    SERVER_FACTORY,
    record_server,
    set_aside_damaged_database,
    stop_orphaned_servers,
)
from tests.conftest import process_ended

# A stand-in server: sleeps, with Prefect's factory in its command line as uvicorn has it.
SERVER = [sys.executable, "-c", "import time; time.sleep(120)", SERVER_FACTORY]

# A run that starts a server, records it and dies without its exit hooks, as under SIGKILL.
KILLED_RUN = f"""
import os, subprocess, sys
from pathlib import Path
from nightshift.prefect_api import record_server
server = subprocess.Popen({SERVER!r}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
record_server(Path(sys.argv[1]), server.pid, 4242)
print(server.pid, flush=True)
os._exit(0)
"""


def test_a_server_whose_run_was_killed_is_stopped_and_forgotten(tmp_path: Path) -> None:
    records = tmp_path / "servers"
    run = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(records)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    pid = int(run.stdout)
    try:
        assert psutil.Process(pid).is_running()  # outlived its run
        assert [p.name for p in records.iterdir()] == [f"{pid}.json"]
        assert stop_orphaned_servers(records) == [pid]
        assert process_ended(pid, timeout=10)
        assert list(records.iterdir()) == []
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()


def test_a_live_runs_server_is_left_alone(tmp_path: Path) -> None:
    """Another run on the same home (waiting for the home lock, or a served deployment)
    still owns its server: the records say it is this process's child."""
    records = tmp_path / "servers"
    server = subprocess.Popen(SERVER)
    try:
        record_server(records, server.pid, 4242)
        assert stop_orphaned_servers(records) == []
        assert server.poll() is None
        assert [p.name for p in records.iterdir()] == [f"{server.pid}.json"]
    finally:
        server.kill()
        server.wait()
    # once it is gone, its record goes at the next look
    assert stop_orphaned_servers(records) == []
    assert list(records.iterdir()) == []


def test_a_recorded_pid_now_running_another_program_is_not_touched(tmp_path: Path) -> None:
    records = tmp_path / "servers"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        records.mkdir()
        started = psutil.Process(other.pid).create_time()
        for name, record in {
            "not a server": {"pid": other.pid, "started": started, "parent": -1},
            "reused pid": {"pid": other.pid, "started": started - 3600, "parent": -1},
        }.items():
            (records / f"{name}.json").write_text(json.dumps(record))
        (records / "unreadable.json").write_text("{")
        assert stop_orphaned_servers(records) == []
        assert other.poll() is None
        assert list(records.iterdir()) == []
    finally:
        other.kill()
        other.wait()


def test_no_records_folder_is_nothing_to_do(tmp_path: Path) -> None:
    assert stop_orphaned_servers(tmp_path / "missing") == []


def a_prefect_like_database(path: Path) -> None:
    """A SQLite database in WAL mode, as Prefect keeps its own, with a few MB of rows."""
    import sqlite3

    con = sqlite3.connect(path)
    con.execute("pragma journal_mode=wal")
    con.execute("create table flow_run (id integer primary key, name text)")
    con.executemany("insert into flow_run (name) values (?)", [("x" * 200,)] * 20_000)
    con.commit()
    con.close()


def test_a_damaged_ephemeral_database_is_moved_aside_and_a_whole_one_is_left(
    tmp_path: Path,
) -> None:
    """A damaged Prefect database made the ephemeral server fail its start for 4 minutes of
    tracebacks, every night. It is moved aside, with its WAL files, so a new one is made."""
    whole = tmp_path / "whole" / "prefect.db"
    whole.parent.mkdir()
    a_prefect_like_database(whole)
    before = whole.read_bytes()
    assert set_aside_damaged_database(whole) is None
    assert whole.read_bytes() == before
    assert set_aside_damaged_database(tmp_path / "none" / "prefect.db") is None

    damaged = tmp_path / "damaged" / "prefect.db"
    damaged.parent.mkdir()
    a_prefect_like_database(damaged)
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    moved = set_aside_damaged_database(damaged)
    assert moved is not None
    aside, problem = moved
    assert problem == "database disk image is malformed"
    left = sorted(p.name for p in damaged.parent.iterdir())
    assert aside.name in left and not [n for n in left if n.startswith("prefect.db-")]
    assert not damaged.exists()
    assert aside.name.startswith("prefect.db.damaged-")
