"""Start Prefect's ephemeral API while the rest of a run imports.

With no PREFECT_API_URL, Prefect starts its API server in a subprocess at the first flow
call and waits for it to answer: 7 s here with an existing database, 19 s on a new home's
first night (the database migrations), with the second core idle meanwhile. `nightshift
run` starts it first, from a thread, and imports torch, MLflow, statsmodels and the flows
while it comes up, which takes about as long again.

Only the wait runs in the thread. Prefect's server module is imported before the thread
starts: two threads importing overlapping packages (both pull in SQLAlchemy and pydantic)
can each hold a lock the other needs, and Python then hands one of them a partly
initialised module.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def ephemeral_api_starting() -> Iterator[None]:
    """Start the ephemeral API (when no PREFECT_API_URL is configured) for the body to
    overlap with, and wait for it to answer when the body is done.

    A failed start is not raised here: the flow's own call starts it again and fails with
    Prefect's message. When the body raises, it is not waited for; Prefect registered an
    exit hook that stops the server process.
    """
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    def start() -> None:
        with contextlib.suppress(Exception):
            SubprocessASGIServer().start()

    thread = threading.Thread(target=start, name="prefect-api-start", daemon=True)
    thread.start()
    yield
    thread.join()
