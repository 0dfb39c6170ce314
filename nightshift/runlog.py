"""The logger for code that runs both inside Prefect (flows, tasks) and from the CLI."""

from __future__ import annotations

import logging


def task_logger(name: str) -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger inside a flow or task run, the module's logger elsewhere."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(name)
