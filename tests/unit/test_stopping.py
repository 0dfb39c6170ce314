"""A stop signal that lands during a DuckDB query (nightshift.stopping).

Real signals, sent from a thread while a real DuckDB query runs in the main thread, to the
handlers a run really has: Prefect's (installed by its flow engine's own `capture_sigterm`),
`exit_on_termination`'s, and Ctrl-C's."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import duckdb
import pytest

from nightshift import stopping
from nightshift.errors import failure_text
from nightshift.stopping import stop_behind, swallowed_stop
from tasks.retry import transient_only

# A pipeline DuckDB runs on its worker threads while the main thread waits for it to end,
# and only then runs the signal handlers: a signal sent while it runs is swallowed.
SLOW_QUERY = "select count(*) from rows where i < $n and md5(i::varchar) < md5((i + 1)::varchar)"


@pytest.fixture(autouse=True)
def handlers_restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test sets the process's handlers as a run would; put back pytest's after."""
    saved = {n: signal.getsignal(n) for n in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    monkeypatch.setattr(stopping, "_interrupted", False)
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def query_stopped_by(number: signal.Signals) -> BaseException:
    """Run SLOW_QUERY in this (the main) thread and have another process send `number` to
    this one while it runs: what the query raised, DuckDB's stand-in for the handler's
    exception. On a busy machine the signal can land just before or just after the query,
    where the handler raises as usual; then again, with a query four times as long."""
    con = duckdb.connect()
    con.execute("create table rows as select range as i from range(32000000)")
    try:
        for rows in (2_000_000, 8_000_000, 32_000_000):
            send = f"sleep 0.05; kill -{int(number)} {os.getpid()}"
            sender = subprocess.Popen(["sh", "-c", send])
            try:
                con.execute(SLOW_QUERY, {"n": rows})
                sender.wait()
                time.sleep(0.5)  # the handler has raised by now, outside the query
            except BaseException as exc:  # noqa: BLE001 - what DuckDB raises is what is checked
                sender.wait()
                if swallowed_stop(exc):
                    return exc
                if isinstance(exc, Exception):
                    raise  # not a handler's: a failure of the test itself
    finally:
        con.close()
    raise AssertionError("the signal never landed while the query ran")


def test_duckdb_swallows_what_a_stop_signals_handler_raises() -> None:
    """What this module is for: the handler's exception is gone, a RuntimeError stands in."""
    from nightshift.prefect_api import exit_on_termination

    exit_on_termination()
    caught = query_stopped_by(signal.SIGTERM)
    assert type(caught) is RuntimeError and str(caught) == "Query interrupted"
    assert caught.__context__ is None and caught.__cause__ is None  # no trace of SystemExit
    assert swallowed_stop(caught)


@pytest.mark.parametrize(
    ("install", "number", "expected"),
    [
        # Prefect's flow engine, while a flow runs: the night crashes as Prefect means it to
        ("prefect", signal.SIGTERM, "TerminationSignal"),
        # `nightshift run` and `serve` outside a flow: exit 143, so exit hooks run
        ("exit_on_termination", signal.SIGTERM, "SystemExit"),
        # Ctrl-C in `nightshift run`, where SIGTERM has a handler too: noted, so told apart
        ("exit_on_termination+note_interrupts", signal.SIGINT, "KeyboardInterrupt"),
        # Ctrl-C in `nightshift ingest`: SIGTERM has no Python handler, so it was Ctrl-C
        ("python defaults", signal.SIGINT, "KeyboardInterrupt"),
    ],
)
def test_the_stop_behind_duckdbs_error_is_raised_again_by_the_handler_installed(
    install: str, number: signal.Signals, expected: str
) -> None:
    from prefect.utilities.engine import capture_sigterm

    from nightshift.prefect_api import exit_on_termination

    if install.startswith("exit_on_termination"):
        exit_on_termination()
    if install.endswith("note_interrupts"):
        stopping.note_interrupts()
    if install == "python defaults":
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if install == "prefect":
        with capture_sigterm():
            caught = query_stopped_by(number)
            stop = stop_behind(caught)  # while Prefect's handler is the one installed
    else:
        caught = query_stopped_by(number)
        stop = stop_behind(caught)
    assert swallowed_stop(caught)
    assert type(stop).__name__ == expected, repr(stop)
    assert stop.__cause__ is caught
    if expected == "TerminationSignal":
        assert stop.signal == signal.SIGTERM
    if expected == "SystemExit":
        assert stop.code == 128 + signal.SIGTERM


def test_other_errors_are_not_taken_for_a_stop() -> None:
    """`connection.interrupt()` (another thread stopping a query) has its own error, and a
    RuntimeError with other words is a failure: neither is raised again as a signal."""
    interrupted = duckdb.InterruptException("INTERRUPT Error: Interrupted!")
    for exc in (interrupted, RuntimeError("Query interrupted by a bug"), RuntimeError()):
        assert not swallowed_stop(exc)
        assert stop_behind(exc) is exc


def test_a_stop_off_the_main_thread_is_left_alone() -> None:
    """DuckDB runs no signal handler outside the main thread, so its error there is not a
    swallowed stop, and raising a signal from there would stop the main thread instead."""
    seen: list[BaseException] = []
    error = RuntimeError("Query interrupted")
    worker = threading.Thread(target=lambda: seen.append(stop_behind(error)))
    worker.start()
    worker.join()
    assert seen == [error]


def test_a_swallowed_stop_is_not_retried_and_says_what_it_was() -> None:
    """The ingest task retried it twice, and the night ran on as if never stopped."""
    swallowed = RuntimeError("Query interrupted")
    retry: Callable[[BaseException], bool] = lambda error: transient_only(  # noqa: E731
        None, None, SimpleNamespace(data=error)
    )
    assert not retry(swallowed)
    assert retry(RuntimeError("IO Error: Could not set lock on file"))  # a plain failure
    assert failure_text(swallowed) == (
        "RuntimeError: Query interrupted (how DuckDB reports a stop signal that landed "
        "during a query)"
    )
