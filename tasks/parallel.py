"""Fan a list of batches out as mapped Prefect task runs: on a local pool of processes, or
on a Dask cluster through prefect-dask when `NIGHTSHIFT_DASK_ADDRESS` is set.

The batch function must be a pure, picklable Prefect task; results come back in batch order,
so the same input gives the same output serial, local-parallel or on Dask.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from nightshift.errors import ConfigError


@contextlib.contextmanager
def one_thread_per_process() -> Iterator[None]:
    """Limit BLAS/OpenMP pools to one thread while a batch runs.

    Every worker process otherwise starts one BLAS thread per core, so two workers on two
    cores run four busy threads on tiny Kalman-filter matrices; measured on the planner that
    makes a batch 5x slower in a worker than in the parent. One thread per process, one
    process per core, is the fast layout for many small fits.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@contextlib.contextmanager
def threads_per_branch(count: int | None) -> Iterator[None]:
    """Give each of several concurrent branches `count` threads (None: leave the pools as
    they are): torch's intra-op pool and the BLAS/OpenMP pools, process-wide.

    Branches that each use every core thrash when they run together.
    """
    if count is None:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        with threadpool_limits(limits=count):
            yield
    finally:
        torch.set_num_threads(before)


def batch_task_runner(workers: int, dask_address: str | None, stop: Any = None):
    """The Dask cluster at `dask_address` when one is configured, else a pool of `workers`
    spawned processes (spawn, not fork: the parent runs Prefect and torch threads, and
    forking a multi-threaded process can deadlock the child), each of which ends when this
    process dies or the `stop` event (a spawn-context Event) is set (`exit_with_parent`)."""
    if dask_address:
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as exc:
            raise ConfigError(
                f"NIGHTSHIFT_DASK_ADDRESS is set ({dask_address}) but prefect-dask is not "
                "installed; install the extra: pip install 'nightshift[dask]'"
            ) from exc
        return DaskTaskRunner(address=dask_address)
    from prefect.task_runners import ProcessPoolTaskRunner

    return ProcessPoolTaskRunner(
        max_workers=workers, initializer=exit_with_parent, initargs=(os.getpid(), stop)
    )


def exit_with_parent(parent_pid: int, stop: Any = None, poll_seconds: float = 1.0) -> None:
    """Pool worker initializer: end this worker once the run that started it is gone, or at
    once when `stop` is set.

    A run killed outright (SIGKILL, the OOM killer) cannot stop its pool, and a worker that
    outlives it blocks for good writing its result to a pipe nobody reads: 350 MB each on
    the `small` shop, held until someone finds them, after the night that most needed the
    memory. When the parent dies the worker is handed to another parent, so a daemon thread
    watching `os.getppid()` sees it within `poll_seconds`. A night that ends while batches
    are in flight (a SIGTERM, a failed batch) sets `stop`: without it the pool finished the
    batches already queued first, 15 s after a SIGTERM on `small`.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            if stop is None:
                time.sleep(poll_seconds)
            elif stop.wait(poll_seconds):
                break
        os._exit(1)  # no cleanup to run: the worker's only state is the ended night's batch

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


@contextlib.contextmanager
def shared_prefect_api() -> Iterator[None]:
    """Point worker processes at this process's Prefect API.

    With no PREFECT_API_URL, Prefect runs an ephemeral API in a subprocess of this one, and
    a spawned worker that is not told its address starts an ephemeral API of its own (seconds
    per worker, and its task runs land in a separate server). Pass the parent's address on.
    """
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_EPHEMERAL_ENABLED,
        temporary_settings,
    )

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the singleton the parent's client already started
    server.start()
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        yield


def map_batches(
    batch_task: Any,
    batches: list[Any],
    workers: int,
    dask_address: str | None,
    report: Callable[[int], None],
    **unmapped_parameters: Any,
) -> list[Any]:
    """`batch_task(batch=b, **unmapped_parameters)` for every batch, as mapped task runs."""
    from prefect import unmapped

    parameters = {"batch": batches, **{k: unmapped(v) for k, v in unmapped_parameters.items()}}
    results = []
    futures: list[Any] = []
    stop = None if dask_address else multiprocessing.get_context("spawn").Event()
    with shared_prefect_api(), batch_task_runner(workers, dask_address, stop) as runner:
        try:
            futures = list(runner.map(batch_task, parameters))
            for done, future in enumerate(futures, 1):
                results.append(future.result())
                report(done)
        except BaseException as exc:
            if stop is not None:
                stop.set()  # the night is over: end the workers rather than their queued batches
                crash_ended_batches(futures[len(results) :], exc)  # not those that returned
            raise
    return results


def crash_ended_batches(futures: list[Any], cause: BaseException) -> None:
    """Mark the task runs of the batches a stopped pool ended Crashed: their workers exit
    without reporting, so the Prefect UI showed them Running for good after a SIGTERM or a
    failed batch. Logged, not raised: the night's own error is the one that matters."""
    from prefect.client.orchestration import get_client

    from nightshift.errors import failure_text
    from nightshift.runlog import task_logger
    from tasks.runs import crash_task_runs

    why = f"the pool ended this batch when the night stopped: {failure_text(cause)}"[:500]
    try:
        with get_client(sync_client=True) as client:
            crash_task_runs(client, [f.task_run_id for f in futures], why)
    except Exception as exc:  # noqa: BLE001 - bookkeeping: the night's own error is raised
        task_logger(__name__).warning("could not mark the ended batches crashed: %s", exc)
