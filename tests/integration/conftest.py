"""One Prefect test harness for the whole session: starting its API costs ~20 s."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    import os

    from prefect.testing.utilities import prefect_test_harness

    # No telemetry from tests (the machine has no route out, and it is noise in the logs).
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def nightly_home(prefect_api: None, tiny_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny shop in a fresh NIGHTSHIFT_HOME that the flow reads from the environment."""
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(tiny_home))
    return tiny_home
