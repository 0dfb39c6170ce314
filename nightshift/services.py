"""The production servers as local processes: a Prefect server, an MLflow server and process
workers, on loopback, for trying the deployed path on one machine (`make services`).

The same programs infra/docker-compose.yml runs in containers, started here as plain
processes: state under `<home>/services/` (SQLite for both servers instead of Postgres), logs
and pid files beside it, each process in its own session so stopping it stops the flow runs
it spawned. `services.env` there holds the variables that point a shell at them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from nightshift.errors import NightshiftError
from nightshift.settings import Settings

HOST = "127.0.0.1"
PROJECT_DIR = Path(__file__).resolve().parent.parent


class ServiceError(NightshiftError):
    """A service did not start, or a command against it failed."""


@dataclass(frozen=True)
class Endpoints:
    prefect_api_url: str
    mlflow_uri: str

    def env(self) -> dict[str, str]:
        return {"PREFECT_API_URL": self.prefect_api_url, "NIGHTSHIFT_MLFLOW_URI": self.mlflow_uri}


def endpoints(prefect_port: int, mlflow_port: int) -> Endpoints:
    return Endpoints(f"http://{HOST}:{prefect_port}/api", f"http://{HOST}:{mlflow_port}")


def venv_bin(program: str) -> str:
    """The console script installed beside this interpreter (the venv's), else from PATH."""
    candidate = Path(sys.executable).parent / program
    return str(candidate) if candidate.exists() else program


def deploy_env(settings: Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment prefect.yaml's `{{ $VAR }}` placeholders are filled from: the
    caller's values win, settings fill the rest."""
    env = dict(os.environ if base is None else base)
    env.setdefault("NIGHTSHIFT_PROJECT_DIR", str(PROJECT_DIR))
    env.setdefault("NIGHTSHIFT_TIMEZONE", settings.timezone)
    env.setdefault("NIGHTSHIFT_NIGHTLY_CRON", settings.nightly_cron)
    env.setdefault("NIGHTSHIFT_CPU_POOL", settings.cpu_pool)
    env.setdefault("NIGHTSHIFT_GPU_POOL", settings.gpu_pool or "nightshift-gpu")
    return env


def run_prefect(args: list[str], env: dict[str, str], timeout: float = 300) -> str:
    """Run a `prefect` CLI command (with the 3.8 fix in nightshift.prefect_cli); raise with
    its output when it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "nightshift.prefect_cli", "--no-prompt", *args],
        env=env,
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise ServiceError(
            f"prefect {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


def deploy(settings: Settings, env: dict[str, str]) -> str:
    """Create the work pools (process type) and apply every deployment in prefect.yaml."""
    full = deploy_env(settings, env)
    for pool in {full["NIGHTSHIFT_CPU_POOL"], full["NIGHTSHIFT_GPU_POOL"]}:
        run_prefect(["work-pool", "create", pool, "--type", "process", "--overwrite"], full)
    return run_prefect(["deploy", "--all"], full)


def health_problem(url: str, timeout: float = 3) -> str | None:
    """Why the Prefect or MLflow server at `url` does not answer on /health (both serve it),
    or None when it does. doctor reports it; `run` checks first, because MLflow's client
    retries a dead server for about four minutes per call before a night fails.

    Only a server that cannot be reached or fails (5xx) is a problem: one that asks for
    credentials this probe does not send (Prefect Cloud, a proxy) still answers."""
    import urllib.error

    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout):  # noqa: S310 - a configured URL
            return None
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.reason}" if exc.code >= 500 else None
    except OSError as exc:
        return str(exc)


def wait_until_healthy(url: str, log: Path, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{url} exited with {proc.returncode}; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise ServiceError(f"{url} did not answer within {timeout:.0f} s; see {log}")


def spawn(name: str, argv: list[str], env: dict[str, str], services_dir: Path) -> subprocess.Popen:
    """Start one service in its own session, logging to <name>.log, with a pid file."""
    log = services_dir / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=PROJECT_DIR,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (services_dir / f"{name}.pid").write_text(str(proc.pid))
    return proc


def running_services(settings: Settings) -> dict[str, int]:
    """Services whose pid file names a live process."""
    alive = {}
    for pid_file in sorted(settings.services_dir.glob("*.pid")):
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive[pid_file.stem] = pid
    return alive


def start_services(
    settings: Settings,
    prefect_port: int = 4200,
    mlflow_port: int = 5000,
    gpu_pool: str | None = None,
    deploy_flows: bool = True,
    timeout: float = 180,
) -> Endpoints:
    """Start the Prefect server, the MLflow server and a worker on the CPU pool (and one on
    `gpu_pool` when given: a GPU machine's worker, on CPU here), then deploy prefect.yaml.

    Workers run flows with NIGHTSHIFT_HOME = this home and MLflow = the started server.
    """
    running = running_services(settings)
    if running:
        raise ServiceError(
            f"services already running from {settings.services_dir}: {running}; "
            "stop them first (make services-stop)"
        )
    root = settings.services_dir
    root.mkdir(parents=True, exist_ok=True)
    urls = endpoints(prefect_port, mlflow_port)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "NIGHTSHIFT_"))}
    prefect_env = {
        **base,
        "PREFECT_HOME": str((root / "prefect").resolve()),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": urls.prefect_api_url,
    }
    server = spawn(
        "prefect-server",
        [venv_bin("prefect"), "server", "start", "--host", HOST, "--port", str(prefect_port)],
        prefect_env,
        root,
    )
    mlflow_dir = (root / "mlflow").resolve()
    mlflow_dir.mkdir(exist_ok=True)
    mlflow = spawn(
        "mlflow-server",
        [
            venv_bin("mlflow"),
            "server",
            "--host",
            HOST,
            "--port",
            str(mlflow_port),
            "--backend-store-uri",
            f"sqlite:///{mlflow_dir / 'mlflow.db'}",
            "--artifacts-destination",
            str(mlflow_dir / "artifacts"),
            "--workers",
            "1",
        ],  # fmt: skip
        base,
        root,
    )
    try:
        wait_until_healthy(
            f"{urls.prefect_api_url}/health", root / "prefect-server.log", server, timeout
        )
        wait_until_healthy(f"{urls.mlflow_uri}/health", root / "mlflow-server.log", mlflow, timeout)
        worker_env = deploy_env(
            settings,
            {
                **prefect_env,
                "NIGHTSHIFT_HOME": str(settings.home.resolve()),
                "NIGHTSHIFT_TIMEZONE": settings.timezone,
                "NIGHTSHIFT_MLFLOW_URI": urls.mlflow_uri,
                **({"NIGHTSHIFT_GPU_POOL": gpu_pool} if gpu_pool else {}),
            },
        )
        if deploy_flows:
            deploy(settings, worker_env)
        pools = {"worker-cpu": worker_env["NIGHTSHIFT_CPU_POOL"]}
        if gpu_pool:
            pools["worker-gpu"] = gpu_pool
        for name, pool in pools.items():
            spawn(
                name,
                [venv_bin("prefect"), "worker", "start", "--pool", pool, "--type", "process"],
                worker_env,
                root,
            )
    except BaseException:
        stop_services(settings)
        raise
    (root / "services.env").write_text("".join(f"export {k}={v}\n" for k, v in urls.env().items()))
    (root / "services.json").write_text(json.dumps({**urls.env(), "gpu_pool": gpu_pool}))
    return urls


def stop_services(settings: Settings, timeout: float = 20) -> list[str]:
    """Stop every service started from this home (and the flow runs they spawned): SIGTERM to
    each process group at once, SIGKILL to what is still alive after `timeout` seconds."""
    running = running_services(settings)
    for pid in running.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    alive = dict(running)
    while alive and time.monotonic() < deadline:
        for name, pid in list(alive.items()):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                del alive[name]
        time.sleep(0.2)
    for pid in alive.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    for pid_file in settings.services_dir.glob("*.pid"):
        pid_file.unlink()
    return list(running)
