"""A stop signal that lands during a DuckDB query still stops the run.

A signal's Python handler stops the work by raising in the main thread: Prefect's
TerminationSignal for SIGTERM while a flow runs, SystemExit from
`prefect_api.exit_on_termination` outside one, KeyboardInterrupt for Ctrl-C. When the signal
lands while DuckDB runs a query in the main thread, DuckDB runs the handler, drops what it
raised, and raises RuntimeError('Query interrupted') instead, with no trace of the signal.
That read as a failed query: the ingest task was retried and the night ran on to publish,
exiting 0 after `timeout` or a service manager had stopped it (caught by CI, once in a few
runs of the SIGTERM test). Ctrl-C was retried the same way.

DuckDB raises exactly that error only for a signal (`connection.interrupt()` raises its
InterruptException), so the places that judge an error ask `stop_behind` for the exception
the handler raised: the signal is delivered once more and its handler, whichever is
installed now, raises again. DuckDB does not keep which signal it was (`stopped_by`): where
both SIGTERM and Ctrl-C have handlers, `nightshift run` notes Ctrl-C (`note_interrupts`). A
hangup is passed on as SIGTERM. Prefect's own SIGTERM handler is left in place: its runner's
graceful cancellation checks that it is the one installed.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

SWALLOWED_BY_DUCKDB = "Query interrupted"

_interrupted = False


def swallowed_stop(exc: BaseException) -> bool:
    """Whether `exc` is DuckDB's stand-in for what a signal's handler raised in a query."""
    return type(exc) is RuntimeError and str(exc) == SWALLOWED_BY_DUCKDB


def stop_behind(exc: BaseException) -> BaseException:
    """The exception the stop signal's handler raises, for DuckDB's stand-in (with `exc` as
    its cause); `exc` itself for any other error, off the main thread (where DuckDB runs no
    handler), or when the handler installed now does not raise."""
    if not swallowed_stop(exc) or threading.current_thread() is not threading.main_thread():
        return exc
    try:
        signal.raise_signal(stopped_by())
    except BaseException as stop:  # noqa: BLE001 - it is handed back, to be raised
        stop.__cause__ = exc
        return stop
    return exc


def stopped_by() -> signal.Signals:
    """The signal DuckDB swallowed: SIGINT when noted (`note_interrupts`) or when SIGTERM
    has no Python handler (its default action ends the process before DuckDB sees it),
    else SIGTERM."""
    if _interrupted or not callable(signal.getsignal(signal.SIGTERM)):
        return signal.SIGINT
    return signal.SIGTERM


def reraise_stop(exc: BaseException) -> None:
    """Raise the stop behind `exc` (`stop_behind`), if there is one: for handlers that keep
    going after an error (a failed branch, a report), so a stop is not taken for one."""
    stop = stop_behind(exc)
    if stop is not exc:
        raise stop


def note_interrupts() -> None:
    """Make Ctrl-C (SIGINT) note itself before raising KeyboardInterrupt, so `stop_behind`
    tells it from SIGTERM. Main thread only (Python's rule for signal handlers). Not for
    `serve`: asyncio.run handles Ctrl-C itself only while Python's own handler is set."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        global _interrupted
        _interrupted = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
