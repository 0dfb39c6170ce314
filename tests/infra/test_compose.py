"""infra/docker-compose.yml cannot be started here (no Docker), so its structure is checked:
the services a deployment needs, what they talk to, where their state lives, and the GPU
reservation. `docker compose config` would check the same on a machine with Docker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

INFRA = Path(__file__).resolve().parents[2] / "infra"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((INFRA / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    pairs = {}
    for line in (INFRA / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def test_compose_has_the_production_services(compose: dict) -> None:
    assert set(compose["services"]) == {
        "postgres",
        "prefect-server",
        "mlflow",
        "worker-cpu",
        "worker-gpu",
    }


def test_servers_keep_state_in_postgres_and_volumes(compose: dict) -> None:
    services = compose["services"]
    prefect_db = services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert prefect_db.startswith("postgresql+asyncpg://") and "@postgres:5432/" in prefect_db
    mlflow_cmd = services["mlflow"]["command"]
    assert re.search(r"--backend-store-uri postgresql://\S+@postgres:5432/mlflow", mlflow_cmd)
    assert "--artifacts-destination /mlartifacts" in mlflow_cmd
    assert "mlartifacts:/mlartifacts" in services["mlflow"]["volumes"]
    assert any(v.startswith("pgdata:") for v in services["postgres"]["volumes"])
    # the mlflow database the server needs is created by the init script postgres mounts
    init_mount = next(v for v in services["postgres"]["volumes"] if "postgres-init.sql" in v)
    assert init_mount.split(":")[1].startswith("/docker-entrypoint-initdb.d/")
    assert "create database mlflow" in (INFRA / "postgres-init.sql").read_text().lower()
    declared = set(compose["volumes"])
    for service in services.values():
        for volume in service.get("volumes", []):
            name = volume.split(":")[0]
            assert name.startswith(".") or name in declared, f"undeclared volume {name}"


def test_ports_are_published_for_the_ui_and_mlflow(compose: dict) -> None:
    services = compose["services"]
    assert services["prefect-server"]["ports"] == ["${PREFECT_PORT:-4200}:4200"]
    assert services["mlflow"]["ports"] == ["${MLFLOW_PORT:-5000}:5000"]
    assert "--port 4200" in services["prefect-server"]["command"]
    assert "--port 5000" in services["mlflow"]["command"]


def test_workers_reach_the_servers_and_share_the_data_volume(compose: dict) -> None:
    services = compose["services"]
    for name in ("worker-cpu", "worker-gpu"):
        worker = services[name]
        env = worker["environment"]
        assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
        assert env["NIGHTSHIFT_MLFLOW_URI"] == "http://mlflow:5000"
        assert env["NIGHTSHIFT_HOME"] == "/data"
        assert "nightshift-data:/data" in worker["volumes"]
        assert worker["build"]["dockerfile"] == "infra/Dockerfile"
        assert worker["build"]["target"] == "worker"
        assert "prefect worker start --pool" in worker["command"]
    assert "${NIGHTSHIFT_CPU_POOL}" in services["worker-cpu"]["command"]
    assert "${NIGHTSHIFT_GPU_POOL}" in services["worker-gpu"]["command"]


def test_gpu_worker_reserves_nvidia_devices_and_uses_cuda(compose: dict) -> None:
    gpu = compose["services"]["worker-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert gpu["environment"]["NIGHTSHIFT_DEVICE"] == "cuda"
    assert "cu" in gpu["build"]["args"]["TORCH_INDEX_URL"].rsplit("/", 1)[-1]
    assert "deploy" not in compose["services"]["worker-cpu"]


def test_every_variable_the_compose_file_uses_is_in_env_example(
    compose: dict, env_example: dict[str, str]
) -> None:
    text = (INFRA / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)(?::-[^}]*)?\}", text))
    assert used, "the compose file reads its settings from the environment"
    missing = used - set(env_example)
    assert not missing, f"variables without a line in infra/.env.example: {sorted(missing)}"


def test_dockerfile_has_both_targets_and_pins_torch() -> None:
    dockerfile = (INFRA / "Dockerfile").read_text()
    assert re.search(r"^FROM \S+ AS worker$", dockerfile, re.M)
    assert re.search(r"^FROM \S+ AS mlflow$", dockerfile, re.M)
    assert "torch==2.13.0" in dockerfile
    # the worker image carries every folder the flows import from
    for folder in ("nightshift", "flows", "tasks", "models", "sql"):
        assert f"COPY {folder} {folder}" in dockerfile
