"""One Prefect test harness for the whole session: starting its API costs ~20 s."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# For tests about wiring, faults and what gets published, not about fit (the branches' own
# tests and tests/unit check quality): the torch models train a few short epochs and the
# inventory backtest replays two weeks.
SHORT_TRAINING = {
    "NIGHTSHIFT_RECOMMENDER_EPOCHS": "4",
    "NIGHTSHIFT_DEMAND_EPOCHS": "3",
    "NIGHTSHIFT_DEMAND_WINDOWS_PER_EPOCH": "2048",
    "NIGHTSHIFT_DEMAND_ARIMA_SAMPLE": "2",
    "NIGHTSHIFT_INVENTORY_BACKTEST_WEEKS": "2",
}


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
