"""What a failed run's `runs.error` says (nightshift.errors.failure_text)."""

from __future__ import annotations

import signal

from nightshift.errors import failure_text


def test_a_failure_says_its_type_and_message_or_what_stopped_it() -> None:
    from prefect.exceptions import TerminationSignal

    assert failure_text(ValueError("orders.csv row 3: bad date")) == (
        "ValueError: orders.csv row 3: bad date"
    )
    # Prefect raises it with a keyword, so it has no message of its own
    stopped = TerminationSignal(signal=signal.SIGTERM)
    assert failure_text(stopped) == "TerminationSignal: stopped by SIGTERM"
    assert failure_text(TerminationSignal(999)) == "TerminationSignal: stopped by signal 999"
    assert failure_text(KeyboardInterrupt()) == "KeyboardInterrupt: interrupted (Ctrl-C)"
    assert failure_text(RuntimeError()) == "RuntimeError: (no message)"
