"""One Prefect test harness for the whole session: starting its API costs ~20 s."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def nightly_home(prefect_api: None, tiny_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny shop in a fresh NIGHTSHIFT_HOME that the flow reads from the environment."""
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(tiny_home))
    return tiny_home
