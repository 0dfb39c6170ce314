"""The production path on one machine, for real: `nightshift services` starts a Prefect server,
an MLflow server and process workers (CPU pool, and a "GPU" pool on CPU) as local processes,
deploys prefect.yaml, and runs are triggered through the server's REST API exactly as the
Prefect UI does. No ephemeral API, no mocks."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import httpx
import pytest

from nightshift.services import Endpoints, ServiceError, start_services, stop_services
from nightshift.settings import Settings
from tests.conftest import TINY_END, settings_at

pytestmark = pytest.mark.integration

GPU_POOL = "nightshift-test-gpu"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
# Seconds a request may wait for an answer. On two cores the Prefect server (one event loop
# beside its scheduler and SQLite) stalled past 10 s while a worker started a flow run's
# process, and three tests failed on that one stall (CI, 2026-12-03): slow is not broken.
API_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def services(
    tmp_path_factory: pytest.TempPathFactory, tiny_shop: Path
) -> Iterator[tuple[Settings, Endpoints]]:
    home = tmp_path_factory.mktemp("services_home")
    shutil.copytree(tiny_shop / "landing", home / "landing")
    settings = settings_at(home)
    urls = start_services(settings, free_port(), free_port(), gpu_pool=GPU_POOL)
    try:
        yield settings, urls
    finally:
        stopped = stop_services(settings)
        assert set(stopped) == {"prefect-server", "mlflow-server", "worker-cpu", "worker-gpu"}
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{urls.prefect_api_url}/health", timeout=2)


def with_retries(send, attempts: int = 6, idempotent: bool = True) -> httpx.Response:  # noqa: ANN001
    """Retry 502/503 as Prefect's own client and UI do: the server answers 503 while its
    SQLite database is busy (e.g. the scheduler writing runs). A read that timed out is
    retried too; a request that creates something is not, so it never happens twice."""
    for attempt in range(attempts):
        try:
            response = send()
        except httpx.TimeoutException:
            if not idempotent or attempt == attempts - 1:
                raise
            continue
        if response.status_code not in (502, 503) or attempt == attempts - 1:
            return response.raise_for_status()
        time.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


def trigger(api: str, deployment: str, parameters: dict) -> str:
    """What the UI's "Run" button does: create a flow run from the deployment."""
    dep = with_retries(
        lambda: httpx.get(f"{api}/deployments/name/{deployment}", timeout=API_TIMEOUT)
    )
    run = with_retries(
        lambda: httpx.post(
            f"{api}/deployments/{dep.json()['id']}/create_flow_run",
            json={"parameters": parameters},
            timeout=API_TIMEOUT,
        ),
        idempotent=False,
    )
    return run.json()["id"]


def wait_for(api: str, flow_run_id: str, timeout: float = 420) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = with_retries(
            lambda: httpx.get(f"{api}/flow_runs/{flow_run_id}", timeout=API_TIMEOUT)
        ).json()
        if run["state"]["type"] in TERMINAL:
            return run
        time.sleep(2)
    pytest.fail(f"flow run {flow_run_id} did not finish within {timeout} s")


def state_names(api: str, flow_run_id: str) -> list[str]:
    states = httpx.get(
        f"{api}/flow_run_states/", params={"flow_run_id": flow_run_id}, timeout=API_TIMEOUT
    )
    return [s["name"] for s in states.raise_for_status().json()]


def test_services_refuse_to_start_twice(services: tuple[Settings, Endpoints]) -> None:
    settings, _ = services
    with pytest.raises(ServiceError, match="already running"):
        start_services(settings, free_port(), free_port())


def test_a_ui_triggered_night_routes_torch_to_the_gpu_pool_and_publishes(
    services: tuple[Settings, Endpoints],
) -> None:
    settings, urls = services
    api = urls.prefect_api_url
    flow_run_id = trigger(
        api,
        "nightly/nightly",
        {"as_of": TINY_END.isoformat(), "models": ["recommender", "segments"]},
    )
    run = wait_for(api, flow_run_id)
    assert run["state"]["type"] == "COMPLETED", run["state"]

    # the recommender ran as a train-branch/gpu run on the GPU pool, a subflow of the night
    children = (
        httpx.post(
            f"{api}/flow_runs/filter",
            json={
                "flow_runs": {"parent_flow_run_id": {"any_": [flow_run_id]}},
                "limit": 20,
                "offset": 0,
            },
            timeout=API_TIMEOUT,
        )
        .raise_for_status()
        .json()
    )
    routed = [c for c in children if c["work_pool_name"] == GPU_POOL]
    assert len(routed) == 1 and routed[0]["parameters"]["branch"] == "recommender"
    assert routed[0]["state"]["type"] == "COMPLETED"

    with duckdb.connect(str(settings.marts_path), read_only=True) as con:
        (run_id,) = con.execute(
            "select run_id from runs where flow_run_id = $f", {"f": flow_run_id}
        ).fetchone()
        for table in ("recommendations", "customer_segments", "kpi_daily"):
            (rows,) = con.execute(
                f"select count(*) from {table} where run_id = $r", {"r": run_id}
            ).fetchone()
            assert rows > 0, f"{table} has no rows from run {run_id}"

    # MLflow runs, found through the server's REST API: the parent and its two children
    found = (
        httpx.post(
            f"{urls.mlflow_uri}/api/2.0/mlflow/runs/search",
            json={
                "experiment_ids": [
                    httpx.get(
                        f"{urls.mlflow_uri}/api/2.0/mlflow/experiments/get-by-name",
                        params={"experiment_name": settings.mlflow_experiment},
                        timeout=API_TIMEOUT,
                    )
                    .raise_for_status()
                    .json()["experiment"]["experiment_id"]
                ],
                "filter": f"tags.`nightshift.run_id` = '{run_id}'",
            },
            timeout=API_TIMEOUT,
        )
        .raise_for_status()
        .json()["runs"]
    )
    tags = {r["info"]["run_name"]: {t["key"]: t["value"] for t in r["data"]["tags"]} for r in found}
    parent = next(r for r in found if r["info"]["run_name"].startswith("nightly-"))
    parent_id = parent["info"]["run_id"]
    assert tags[f"recommender-{TINY_END}"]["mlflow.parentRunId"] == parent_id
    assert tags[f"segments-{TINY_END}"]["mlflow.parentRunId"] == parent_id
    assert tags[parent["info"]["run_name"]]["nightshift.flow_run_id"] == flow_run_id
    # the Prefect run summary links to the MLflow server's runs
    artifacts = (
        httpx.post(
            f"{api}/artifacts/filter",
            json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 50, "offset": 0},
            timeout=API_TIMEOUT,
        )
        .raise_for_status()
        .json()
    )
    by_key = {a["key"]: a for a in artifacts if a.get("key")}
    summary = by_key["nightly-summary"]["data"]
    experiment = parent["info"]["experiment_id"]
    assert f"{urls.mlflow_uri}/#/experiments/{experiment}/runs/{parent_id}" in summary
    child_ids = [r["info"]["run_id"] for r in found if r["info"]["run_id"] != parent_id]
    assert all(f"/runs/{child}" in summary for child in child_ids)
    assert parent_id in by_key["mlflow-run"]["data"]
    assert "kpi-daily" in by_key

    recommender = next(r for r in found if r["info"]["run_name"].startswith("recommender-"))
    metrics = {m["key"] for m in recommender["data"]["metrics"]}
    assert any(m.startswith("test_ndcg") for m in metrics), metrics
    assert any(m.startswith("baseline_ndcg") for m in metrics), metrics


def test_two_triggers_of_nightly_never_run_at_once(services: tuple[Settings, Endpoints]) -> None:
    _, urls = services
    api = urls.prefect_api_url
    params = {"as_of": TINY_END.isoformat(), "models": []}
    first, second = trigger(api, "nightly/nightly", params), trigger(api, "nightly/nightly", params)
    runs = [wait_for(api, first), wait_for(api, second)]
    assert [r["state"]["type"] for r in runs] == ["COMPLETED", "COMPLETED"]
    spans = sorted(
        (datetime.fromisoformat(r["start_time"]), datetime.fromisoformat(r["end_time"]))
        for r in runs
    )
    assert spans[0][1] <= spans[1][0], f"the two nights overlapped: {spans}"
    # the later one was held back by the deployment's concurrency limit, not by luck
    waited = [name for r in (first, second) for name in state_names(api, r)]
    assert "AwaitingConcurrencySlot" in waited, waited


def test_the_schedule_creates_nightly_runs_at_two_in_the_shops_timezone(
    services: tuple[Settings, Endpoints],
) -> None:
    """The server's scheduler turns the deployment's cron into scheduled runs (the fixture's
    shop timezone is UTC), so nights start without anyone pressing Run."""
    _, urls = services
    api = urls.prefect_api_url
    dep = with_retries(
        lambda: httpx.get(f"{api}/deployments/name/nightly/nightly", timeout=API_TIMEOUT)
    )
    deadline = time.monotonic() + 90
    scheduled: list[dict] = []
    while time.monotonic() < deadline and not scheduled:
        found = with_retries(
            lambda: httpx.post(
                f"{api}/flow_runs/filter",
                json={
                    "flow_runs": {
                        "deployment_id": {"any_": [dep.json()["id"]]},
                        "state": {"type": {"any_": ["SCHEDULED"]}},
                    },
                    "limit": 20,
                    "offset": 0,
                },
                timeout=API_TIMEOUT,
            )
        ).json()
        scheduled = [r for r in found if r["state"]["name"] == "Scheduled"]
        time.sleep(2)
    assert scheduled, "the scheduler created no runs for the nightly deployment"
    for run in scheduled:
        start = datetime.fromisoformat(run["expected_start_time"])
        assert (start.hour, start.minute, start.second) == (2, 0, 0), start
