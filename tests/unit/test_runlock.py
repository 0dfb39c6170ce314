"""The home lock: one run at a time, released when its holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nightshift.runlock import HomeBusyError, home_lock

HOLD = """
import sys, time
from pathlib import Path
from nightshift.runlock import home_lock
with home_lock(Path(sys.argv[1]), "holder", 5):
    print("locked", flush=True)
    time.sleep(60)
"""


def start_holder(path: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_run_waits_then_gives_up_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    holder = start_holder(path)
    told: list[str] = []
    try:
        with (
            pytest.raises(HomeBusyError, match=rf"run holder \(pid {holder.pid}\)"),
            home_lock(path, "second", 0.3, told.append, poll_seconds=0.05),
        ):
            pytest.fail("entered while another process held the lock")
    finally:
        holder.kill()
        holder.wait()
    assert told == [f"run holder (pid {holder.pid})"]


def test_the_lock_is_released_when_its_holder_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    holder = start_holder(path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    entered = False
    with home_lock(path, "after-crash", 5, poll_seconds=0.05):
        entered = True
    assert entered


def test_a_waiting_run_starts_when_the_holder_finishes(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    holder = start_holder(path)
    subprocess.Popen(["sh", "-c", f"sleep 0.5; kill {holder.pid}"])
    told: list[str] = []
    with home_lock(path, "next", 30, told.append, poll_seconds=0.05):
        assert holder.wait(timeout=1) is not None
    assert len(told) == 1


def test_generate_into_the_home_waits_for_the_run_holding_it(tmp_path: Path) -> None:
    """generate replaces the home's landing files; while a night ingests them it waits its
    turn (here, gives up), naming the holder and writing nothing. Into another folder
    (--out) it does not wait."""
    home = tmp_path / "home"
    holder = start_holder(home / "run.lock")
    command = [sys.executable, "-m", "nightshift.cli", "generate", "--profile", "tiny"]
    env = {**os.environ, "NIGHTSHIFT_LOCK_TIMEOUT_SECONDS": "1"}
    try:
        busy = subprocess.run(
            [*command, "--home", str(home)], capture_output=True, text=True, env=env, timeout=60
        )
        elsewhere = subprocess.run(
            [*command, "--home", str(home), "--out", str(tmp_path / "other" / "landing")],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    assert busy.returncode == 2, busy.stderr
    assert f"waiting for run holder (pid {holder.pid})" in busy.stdout
    assert "is busy" in busy.stderr
    assert not (home / "landing").exists()
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert list((tmp_path / "other" / "landing").glob("orders/*.csv"))
