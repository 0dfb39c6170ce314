"""Prefect API servers left by killed runs: found from their records and stopped, while a
live run's server and a reused pid are left alone. Real processes, no Prefect."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import psutil

from nightshift.prefect_api import SERVER_FACTORY, record_server, stop_orphaned_servers
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
