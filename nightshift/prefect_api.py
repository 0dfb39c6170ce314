"""Start Prefect's ephemeral API while the rest of a run imports, and never leave it behind.

With no PREFECT_API_URL, Prefect starts its API server in a subprocess at the first flow
call and waits for it to answer: 7 s here with an existing database, 19 s on a new home's
first night (the database migrations), with the second core idle meanwhile. `nightshift
run` starts it first, from a thread, and imports torch, MLflow, statsmodels and the flows
while it comes up, which takes about as long again.

Only the wait runs in the thread. Prefect's server module is imported before the thread
starts: two threads importing overlapping packages (both pull in SQLAlchemy and pydantic)
can each hold a lock the other needs, and Python then hands one of them a partly
initialised module.

Prefect stops that server from an exit hook, which a signal's default action skips. A
night stopped by `timeout`, a service manager or a closed terminal (SIGTERM, SIGHUP) left
the server running for good: 250 MB, its background services still writing the home's
Prefect database beside the next night's server. `exit_on_termination` turns those signals
into a normal exit, so the hook runs. A run killed outright (SIGKILL, the OOM killer) runs
no hook at all: each started server is recorded under the home, and the next run stops one
whose parent is gone (`stop_orphaned_servers`). And the server runs in a session of its own
(`detached_server_class`), so a signal sent to the night's whole process group does not kill
it while the night still reports its end to it.

A damaged database (cut short by a full disk or a restore) made the ephemeral server fail
its start again and again for 4 minutes, thousands of traceback lines, before the run gave
up with "Timed out while attempting to connect": every night, until someone found the file.
It holds only the embedded API's history of flow runs (nightshift's record of its nights is
the `runs` table), so `set_aside_damaged_database` moves it aside and the server starts a
new one.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from nightshift.files import sqlite_damage

# What Prefect's ephemeral server runs (uvicorn --factory ...): a recorded pid whose command
# line lacks it is another program that reused the pid.
SERVER_FACTORY = "prefect.server.api.server:create_app"


SQLITE_URL = "sqlite+aiosqlite:///"


def ephemeral_database() -> Path | None:
    """The SQLite file the ephemeral API server will use, or None when Prefect is set to use
    a server (PREFECT_API_URL) or a database that is not a SQLite file."""
    from prefect.settings import get_current_settings

    current = get_current_settings()
    if current.api.url:
        return None
    url = current.server.database.connection_url
    url = url.get_secret_value() if url is not None else ""
    return Path(url.removeprefix(SQLITE_URL)) if url.startswith(SQLITE_URL) else None


def set_aside_damaged_database(database: Path) -> tuple[Path, str] | None:
    """Rename a damaged SQLite database (with its -wal and -shm files) to
    `<name>.damaged-<time>` so that its server creates a new one; returns where it went and
    what was wrong, or None when it is whole or missing."""
    if not database.is_file():
        return None
    problem = sqlite_damage(database)
    if problem is None:
        return None
    aside = database.with_name(f"{database.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        part = database.with_name(database.name + suffix)
        if part.exists():
            part.rename(aside.with_name(aside.name + suffix))
    return aside, problem


def exit_on_termination() -> None:
    """Make SIGTERM and SIGHUP end this process through SystemExit (status 128 + signal), so
    that exit hooks and `finally` blocks run. Prefect's flow engine takes SIGTERM over while
    a flow runs, marks the run crashed, then sends the signal again to the handler it
    replaced, this one. A hangup is passed on as SIGTERM, so a flow run treats it the same.
    Main thread only (Python's rule for signal handlers)."""

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGHUP, lambda signum, frame: signal.raise_signal(signal.SIGTERM))


def record_server(records: Path, pid: int, port: int | None) -> Path:
    """Write down a server this process started (pid, start time, port, this process as its
    parent), for `stop_orphaned_servers` in a later run; removed again at a normal exit."""
    import psutil

    records.mkdir(parents=True, exist_ok=True)
    path = records / f"{pid}.json"
    started = psutil.Process(pid).create_time()
    path.write_text(
        json.dumps({"pid": pid, "started": started, "port": port, "parent": os.getpid()})
    )
    atexit.register(path.unlink, missing_ok=True)
    return path


def recorded_server(record: dict) -> tuple[object | None, bool]:
    """The recorded server's process, or None when it is gone (or its pid now belongs to
    another program), and whether its parent, the run that started it, is gone."""
    import psutil

    try:
        proc = psutil.Process(int(record["pid"]))
        if abs(proc.create_time() - float(record["started"])) > 1:
            return None, False  # the pid was reused
        if not any(SERVER_FACTORY in part for part in proc.cmdline()):
            return None, False
        return proc, proc.ppid() != int(record["parent"])
    except (psutil.Error, KeyError, TypeError, ValueError):
        return None, False


def recorded_servers(records: Path) -> Iterator[tuple[Path, object | None, bool]]:
    """(record file, the server's process or None, whether its run is gone) per record."""
    for path in sorted(records.glob("*.json")) if records.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            record = {}
        yield path, *recorded_server(record)


def orphaned_servers(records: Path) -> list[int]:
    """The pids of recorded servers still running after their run was killed."""
    return [proc.pid for _, proc, orphaned in recorded_servers(records) if orphaned]


def stop_orphaned_servers(records: Path, timeout: float = 10) -> list[int]:
    """Stop the Prefect API servers that earlier runs started and were killed before they
    could stop them; return their pids. A server whose run is alive (another run on this
    home) is left alone; records of servers that are gone are removed."""
    import psutil

    stopped = []
    for path, proc, orphaned in recorded_servers(records):
        if proc is not None and not orphaned:
            continue
        if proc is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.terminate()
                try:
                    proc.wait(timeout)
                except psutil.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
            stopped.append(proc.pid)
        path.unlink(missing_ok=True)
    return stopped


class _NewSessionSubprocess:
    """The subprocess module, except that Popen starts the child in a session of its own."""

    def __getattr__(self, name: str) -> object:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args: object, **kwargs: object) -> subprocess.Popen:  # noqa: N802 - subprocess's name
        return subprocess.Popen(*args, start_new_session=True, **kwargs)


@functools.cache
def detached_server_class() -> type:
    """Prefect's ephemeral API server class, started in a session of its own.

    `timeout` and service managers signal the whole process group (systemd: the whole
    cgroup), so a stopped night's server died at the same moment as the night, which then
    spent 3.5 minutes retrying a dead API to report its crash before it exited. In its own
    session the server outlives the signal until the night has reported, and the night's
    exit hook stops it. Prefect's own command and environment are kept: only the Popen its
    module calls is swapped, while that one call runs."""
    from prefect.server.api import server as server_module

    class DetachedServer(server_module.SubprocessASGIServer):
        records: Path | None = None  # where to record each server process started

        def _run_uvicorn_command(self) -> subprocess.Popen:
            module_subprocess = server_module.subprocess
            server_module.subprocess = _NewSessionSubprocess()
            try:
                process = super()._run_uvicorn_command()
            finally:
                server_module.subprocess = module_subprocess
            if self.records is not None:  # at once: a kill during the start-up wait is covered
                record_server(self.records, process.pid, self.port)
            return process

    return DetachedServer


def ephemeral_server(records: Path) -> object:
    """The process's ephemeral API server: the one Prefect's clients use (registered under
    Prefect's default key), made a detached one that records its processes under `records`
    if none was made yet."""
    from prefect.server.api.server import SubprocessASGIServer

    existing = SubprocessASGIServer._instances.get(None)
    if existing is not None:
        return existing
    server = detached_server_class()()
    server.records = records
    return server


@contextlib.contextmanager
def ephemeral_api_starting(records: Path) -> Iterator[None]:
    """Start the ephemeral API (when no PREFECT_API_URL is configured) for the body to
    overlap with, recording its process under `records`, and wait for it to answer when the
    body is done.

    A failed start is not raised here: the flow's own call starts it again and fails with
    Prefect's message. When the body raises, it is not waited for; Prefect registered an
    exit hook that stops the server process.
    """
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        yield
        return
    server = ephemeral_server(records)  # imports Prefect's server module before the thread

    def start() -> None:
        with contextlib.suppress(Exception):
            server.start()

    thread = threading.Thread(target=start, name="prefect-api-start", daemon=True)
    thread.start()
    yield
    thread.join()
