"""Errors a user can act on. Each message names the file, the row or column, and the rule."""


class NightshiftError(Exception):
    """Base class: the CLI prints these as one clear line instead of a traceback."""


class ContractError(NightshiftError):
    """A landing file breaks the data contract as a whole (missing column, wrong type, empty)."""

    def __init__(self, source_file: str, rule: str, message: str) -> None:
        self.source_file = source_file
        self.rule = rule
        super().__init__(f"{source_file}: {message} (rule: {rule})")


class ConfigError(NightshiftError):
    """A setting or parameter that cannot work; raised before any data is touched."""


def failure_text(exc: BaseException) -> str:
    """What `runs.error` says about a run that ended with `exc`: its type and message.

    A run stopped by a signal (a cancelled deployment, `timeout`, a stopping service
    manager) names the signal: Prefect's TerminationSignal carries it as an attribute and no
    message, and "TerminationSignal: " told whoever was paged nothing. Ctrl-C says so, and
    so does DuckDB's stand-in for a stop during a query (`nightshift.stopping`)."""
    from nightshift.stopping import swallowed_stop

    number = getattr(exc, "signal", None)
    if isinstance(number, int):
        import signal

        try:
            message = f"stopped by {signal.Signals(number).name}"
        except ValueError:
            message = f"stopped by signal {number}"
    elif swallowed_stop(exc):
        message = f"{exc} (how DuckDB reports a stop signal that landed during a query)"
    elif str(exc):
        message = str(exc)
    elif isinstance(exc, KeyboardInterrupt):
        message = "interrupted (Ctrl-C)"
    else:
        message = "(no message)"
    return f"{type(exc).__name__}: {message}"
