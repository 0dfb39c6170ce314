"""Pool workers end with their night: when the run that started them is killed, and at once
when a stopped night sets the pool's stop event. Real processes and a real spawn pool."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import psutil
import pytest

from tasks.parallel import exit_with_parent
from tests.conftest import process_ended

# A worker whose run is killed: the run starts it, sees it ready, and dies without cleanup.
WORKER = """
import sys, time
from tasks.parallel import exit_with_parent
exit_with_parent(int(sys.argv[1]), poll_seconds=0.1)
print("ready", flush=True)
time.sleep(120)
"""
KILLED_RUN = f"""
import os, subprocess, sys
worker = subprocess.Popen([sys.executable, "-c", {WORKER!r}, str(os.getpid())],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
assert worker.stdout.readline().strip() == "ready"
print(worker.pid, flush=True)
os._exit(0)
"""


def test_a_worker_ends_when_the_run_that_started_it_is_killed() -> None:
    run = subprocess.run(
        [sys.executable, "-c", KILLED_RUN], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    worker = int(run.stdout)
    try:
        assert process_ended(worker, timeout=10)
    finally:
        if not process_ended(worker, timeout=0):
            psutil.Process(worker).kill()


def test_setting_stop_ends_the_workers_instead_of_their_queued_work() -> None:
    """What a stopped night does to its pool: the long tasks in flight and queued fail at
    once as a broken pool, instead of running to the end (a minute each here)."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    pool = ProcessPoolExecutor(
        max_workers=2, mp_context=context, initializer=exit_with_parent,
        initargs=(os.getpid(), stop, 0.1),
    )  # fmt: skip
    try:
        futures = [pool.submit(time.sleep, 60) for _ in range(4)]
        workers = [psutil.Process(pid) for pid in pool._processes]  # started by now
        time.sleep(0.5)
        assert not any(f.done() for f in futures)
        stop.set()
        for future in futures:
            with pytest.raises(BrokenProcessPool):  # a task that ran on would time out here
                future.result(timeout=30)
        assert all(process_ended(w.pid, timeout=10) for w in workers)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
