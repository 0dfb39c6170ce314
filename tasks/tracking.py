"""MLflow: one parent run per night; model branches log child runs under it.

The default store is SQLite under the home (`NIGHTSHIFT_MLFLOW_URI` points elsewhere, e.g.
an `mlflow server`). We use `MlflowClient` with explicit run ids rather than the fluent
`mlflow.start_run` so that tasks on different threads or workers never share hidden state.
"""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift.retention import beyond_newest
from nightshift.runlog import raise_if_night_ended
from nightshift.settings import Settings
from tasks.retry import IO_RETRY

if TYPE_CHECKING:
    import polars as pl
    from mlflow import MlflowClient

    from tasks.branch import BranchResult
    from tasks.runs import RunContext


def tracking_client(settings: Settings) -> MlflowClient:
    """A client for the configured store, creating the local store's folder if needed."""
    from mlflow import MlflowClient

    if settings.mlflow_uri is None:
        settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=settings.tracking_uri)


def experiment_id(client: MlflowClient, settings: Settings) -> str:
    """The nightshift experiment's id, created with its artifact location on first use."""
    experiment = client.get_experiment_by_name(settings.mlflow_experiment)
    if experiment is not None:
        return experiment.experiment_id
    location = settings.artifact_location if settings.mlflow_uri is None else None
    return client.create_experiment(settings.mlflow_experiment, artifact_location=location)


@task(name="mlflow-parent-run", cache_policy=NO_CACHE, **IO_RETRY)
def start_parent_run(
    settings: Settings,
    run_id: str,
    as_of: date,
    flow_run_id: str | None,
    params: Mapping[str, object],
) -> str:
    """Open the night's parent run; returns its MLflow run id."""
    from tasks.runs import code_version

    client = tracking_client(settings)
    run = client.create_run(
        experiment_id(client, settings),
        run_name=f"nightly-{as_of.isoformat()}",
        tags={
            "nightshift.run_id": run_id,
            "nightshift.as_of": as_of.isoformat(),
            "nightshift.flow_run_id": flow_run_id or "",
            "nightshift.code_version": code_version(),
        },
    )
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    return run.info.run_id


def combined_digest(digests: Mapping[str, str]) -> str:
    """One SHA-256 over every input file's name and digest, independent of order."""
    import hashlib

    text = "\n".join(f"{name}={digest}" for name, digest in sorted(digests.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def audit_metrics(audit: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """Row accounting as flat metric names, e.g. orders_rows_quarantined."""
    return {
        f"{table}_{key}": float(n) for table, counts in audit.items() for key, n in counts.items()
    }


@task(name="mlflow-finish", cache_policy=NO_CACHE, **IO_RETRY)
def finish_parent_run(
    settings: Settings,
    mlflow_run_id: str,
    status: str,
    audit: Mapping[str, Mapping[str, int]] | None = None,
    record: Mapping[str, object] | None = None,
    input_digests: Mapping[str, str] | None = None,
) -> None:
    """Log the night's row accounting, summary and input digests (one combined digest as a
    tag, to search runs by the data they saw; every file's in input_digests.json), then
    close the run FINISHED or FAILED."""
    client = tracking_client(settings)
    for key, value in audit_metrics(audit or {}).items():
        client.log_metric(mlflow_run_id, key, value)
    if record is not None:
        client.log_dict(mlflow_run_id, dict(record), "run_summary.json")
    if input_digests is not None:
        client.log_dict(mlflow_run_id, dict(input_digests), "input_digests.json")
        client.set_tag(mlflow_run_id, "nightshift.input_digest", combined_digest(input_digests))
    client.set_tag(mlflow_run_id, "nightshift.status", status)
    client.set_terminated(mlflow_run_id, status="FINISHED" if status != "failed" else "FAILED")


def end_abandoned_runs(settings: Settings, run_ids: list[str]) -> dict[str, str]:
    """Close the MLflow runs of nights whose process died: every run tagged with one of
    their run ids (the night's parent run and its branches) still RUNNING ends KILLED, tagged
    `nightshift.status = abandoned`. Returns {run id: its parent MLflow run id}.

    A killed process cannot close its own runs, so the MLflow UI went on showing a night
    killed days before, and the branch that was training in it, as in progress."""
    client = tracking_client(settings)
    experiment = experiment_id(client, settings)
    parents = {}
    for run_id in run_ids:
        runs = client.search_runs(
            [experiment], filter_string=f"tags.`nightshift.run_id` = '{run_id}'"
        )
        for run in runs:
            if "mlflow.parentRunId" not in run.data.tags:
                parents[run_id] = run.info.run_id
            if run.info.status == "RUNNING":
                client.set_tag(run.info.run_id, "nightshift.status", "abandoned")
                client.set_terminated(run.info.run_id, status="KILLED")
    return parents


def start_child_run(
    settings: Settings, parent_run_id: str | None, branch: str, run_id: str, as_of: date
) -> str:
    """Open a branch's child run under the night's parent (a top-level run without one)."""
    from tasks.runs import code_version

    client = tracking_client(settings)
    tags = {
        "nightshift.run_id": run_id,
        "nightshift.as_of": as_of.isoformat(),
        "nightshift.branch": branch,
        "nightshift.code_version": code_version(),
    }
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run = client.create_run(
        experiment_id(client, settings), run_name=f"{branch}-{as_of.isoformat()}", tags=tags
    )
    return run.info.run_id


@contextmanager
def child_run(settings: Settings, run: RunContext, branch: str) -> Iterator[str]:
    """A branch's child run for the block: FINISHED when the block ends, FAILED when it
    raises (a cancelled task too), so the MLflow UI never shows a dead branch as running."""
    child = start_child_run(settings, run.mlflow_run_id, branch, run.run_id, run.as_of)
    try:
        yield child
    except BaseException:
        finish_child_run(settings, child, failed=True)
        raise
    finish_child_run(settings, child)


def log_flat(
    settings: Settings,
    mlflow_run_id: str,
    params: Mapping[str, object] | None = None,
    metrics: Mapping[str, float] | None = None,
    tags: Mapping[str, str] | None = None,
    step: int = 0,
) -> None:
    """Params, metrics (at `step`) and tags in one batch call."""
    import time

    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    tracking_client(settings).log_batch(
        mlflow_run_id,
        metrics=[Metric(k, float(v), now, step) for k, v in (metrics or {}).items()],
        params=[Param(k, str(v)) for k, v in (params or {}).items()],
        tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
    )


def log_registered_model(
    settings: Settings, mlflow_run_id: str, log_model: Callable[[], object]
) -> str:
    """Run `log_model` (an mlflow.<flavor>.log_model call that registers a model) inside the
    run. Returns the new version ("3"); `promote_champions` moves the alias later.

    The flavors' log_model only works through the fluent API, so the run is resumed as the
    active run of this thread (MLflow keeps that per thread) just for the call.
    """
    import mlflow

    raise_if_night_ended("registering a model version")
    mlflow.set_tracking_uri(settings.tracking_uri)
    with mlflow.start_run(run_id=mlflow_run_id):
        info = log_model()
    return str(info.registered_model_version)


@task(name="promote-champions", cache_policy=NO_CACHE, **IO_RETRY)
def promote_champions(settings: Settings, results: list[BranchResult]) -> dict[str, str]:
    """Point each promoted branch's `champion` alias at the version it registered tonight;
    returns {registered name: version}.

    Called by the spine once the night's marts are published, not by the branches: the
    champion is the model behind the published tables. A branch that promoted itself could
    move it for a night that then failed to publish, or, running in a thread, after the night
    had been stopped (a SIGTERM during training left branches registering and promoting for
    another 100 s after the run was closed as failed)."""
    client = tracking_client(settings)
    promoted = {
        r.registered_name: r.registered_version
        for r in results
        if r.promoted and r.registered_name and r.registered_version
    }
    for name, version in promoted.items():
        client.set_registered_model_alias(name, "champion", version)
    return promoted


def log_torch_model(
    settings: Settings,
    mlflow_run_id: str,
    module: object,
    input_example: object,
    registered_name: str,
) -> str:
    """A torch module as a new registered version (see `log_registered_model`)."""
    import warnings

    import mlflow.pytorch
    import torch

    from models.device import TORCH_BACKENDS

    # An LSTM reassigns its _flat_weights list in forward; torch.export restores the module
    # afterwards and only warns (pytorch/pytorch#163809): noise in every night's log. Set
    # for the process, as catch_warnings is not thread-safe and branches run in threads.
    warnings.filterwarnings(
        "ignore", message="The tensor attributes .*_flat_weights", category=UserWarning
    )

    def log_model():  # noqa: ANN202 - MLflow's ModelInfo
        # MLflow saves in the "pt2" format by tracing the module with torch.export, which
        # flips torch's process-wide backend flags meanwhile: no branch may be computing
        # with torch while it runs (models.device.TORCH_BACKENDS).
        with TORCH_BACKENDS.exclusive():
            return mlflow.pytorch.log_model(
                module,
                name="model",
                input_example=input_example,
                # Listing the one requirement skips MLflow's slow import-scanning inference.
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
                registered_model_name=registered_name,
            )

    return log_registered_model(settings, mlflow_run_id, log_model)


def log_sklearn_model(
    settings: Settings,
    mlflow_run_id: str,
    model: object,
    input_example: object,
    registered_name: str,
) -> str:
    """A fitted scikit-learn estimator or pipeline as a new registered version."""
    import mlflow.sklearn
    import sklearn

    return log_registered_model(
        settings,
        mlflow_run_id,
        lambda: mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=input_example,
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
            registered_model_name=registered_name,
        ),
    )


def register_artifacts(
    settings: Settings,
    mlflow_run_id: str,
    artifact_path: str,
    registered_name: str,
) -> str:
    """Register a run's artifact folder as a new version of `registered_name`. Returns the
    version ("3"); `promote_champions` moves the alias later.

    For models that are tables rather than an estimator object (per-SKU inventory
    policies, elasticities and chosen prices): the version points at the Parquet files that
    define it, so "the champion's inventory plan" resolves like any other champion.
    """
    from mlflow.exceptions import MlflowException

    raise_if_night_ended("registering a model version")
    client = tracking_client(settings)
    try:
        client.create_registered_model(registered_name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    source = f"{client.get_run(mlflow_run_id).info.artifact_uri}/{artifact_path}"
    version = client.create_model_version(registered_name, source, run_id=mlflow_run_id).version
    return str(version)


def log_frames(
    settings: Settings, mlflow_run_id: str, artifact_path: str, frames: Mapping[str, pl.DataFrame]
) -> None:
    """Log Polars frames as Parquet artifacts under `artifact_path` (file name -> frame)."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        for name, frame in frames.items():
            frame.write_parquet(Path(tmp) / name)
        tracking_client(settings).log_artifacts(mlflow_run_id, tmp, artifact_path)


def finish_child_run(settings: Settings, mlflow_run_id: str, failed: bool = False) -> None:
    tracking_client(settings).set_terminated(
        mlflow_run_id, status="FAILED" if failed else "FINISHED"
    )


def logged_model_id(version: object) -> str | None:
    """The logged model a registered version was made from, if any: MLflow 3.17 leaves a
    version's `model_id` empty and names the model in its source, `models:/m-<id>`."""
    model_id = getattr(version, "model_id", None)
    if model_id:
        return model_id
    found = re.fullmatch(r"models:/(m-[0-9a-f]+)", getattr(version, "source", "") or "")
    return found.group(1) if found else None


def remove_emptied_local_folder(artifact_location: str) -> None:
    """Remove a local logged model's folder (`models/m-<id>/artifacts`) once its files are
    deleted: the artifact repository empties it but leaves both folders, one pair a model
    a night. A remote store has no folders to leave."""
    parsed = urllib.parse.urlparse(artifact_location)
    if parsed.scheme not in ("", "file"):
        return
    artifacts = Path(urllib.request.url2pathname(parsed.path))
    folders = [artifacts]
    if artifacts.parent.name.startswith("m-"):
        folders.append(artifacts.parent)
    for folder in folders:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


@task(name="prune-model-versions", cache_policy=NO_CACHE)
def prune_model_versions(settings: Settings, prefix: str = "nightshift-") -> dict[str, list[str]]:
    """Delete registered versions beyond the newest `settings.model_versions_kept` of every
    model named `prefix*`, and their logged models' files; the champion is always kept.

    Each night registers a new version of every model, and a logged model keeps its files:
    the recommender's are 277 MB a night on `large` (its user factors), about 100 GB a year.
    Versions made from a run's artifact folder (inventory, pricing) are small; only their
    registry entry goes, the run keeps its files. Returns the deleted versions per model.
    """
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    if settings.model_versions_kept <= 0:
        return {}
    client = tracking_client(settings)
    pruned: dict[str, list[str]] = {}
    for found in client.search_registered_models(filter_string=f"name LIKE '{prefix}%'"):
        model = client.get_registered_model(found.name)  # search results may lack aliases
        versions = {
            str(v.version): v for v in client.search_model_versions(f"name = '{model.name}'")
        }
        protected = {str(version) for version in model.aliases.values()}
        doomed = beyond_newest(versions, settings.model_versions_kept, protected, key=int)
        for version in doomed:
            model_id = logged_model_id(versions[version])
            client.delete_model_version(model.name, version)
            if model_id:
                logged = client.get_logged_model(model_id)
                get_artifact_repository(logged.artifact_location).delete_artifacts()
                remove_emptied_local_folder(logged.artifact_location)
                client.delete_logged_model(model_id)
        if doomed:
            pruned[model.name] = doomed
    return pruned
