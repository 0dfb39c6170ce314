"""Settings: environment first, overrides on top, bad values fail early and clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.device import choose_device
from nightshift.errors import ConfigError
from nightshift.settings import load_settings


def test_defaults_run_everything_under_one_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NIGHTSHIFT_HOME", raising=False)
    settings = load_settings()
    assert settings.home == Path(".nightshift")
    assert settings.warehouse_path == Path(".nightshift/warehouse.duckdb")
    assert settings.tracking_uri.startswith("sqlite:///") and settings.tracking_uri.endswith(
        "mlflow/mlflow.db"
    )


def test_environment_is_read_and_overrides_win(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(tmp_path))
    monkeypatch.setenv("NIGHTSHIFT_TIMEZONE", "Europe/London")
    assert load_settings().home == tmp_path
    assert load_settings(timezone="Asia/Tokyo").timezone == "Asia/Tokyo"
    assert load_settings(home=None).home == tmp_path  # None means "not given"


def test_mlflows_own_variable_is_named_when_it_points_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """MLFLOW_TRACKING_URI is not honoured (MLflow sets it in-process once a model is logged,
    so a later read would carry one home's store into another), but doctor and the night's
    log say it is ignored and what to set instead."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # an earlier test's model set it
    settings = load_settings(home=tmp_path)
    assert settings.ignored_mlflow_variable() is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.tracking_uri)  # as MLflow sets it
    assert settings.ignored_mlflow_variable() is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert load_settings(home=tmp_path).tracking_uri == settings.tracking_uri
    warning = settings.ignored_mlflow_variable()
    assert warning is not None
    assert "MLFLOW_TRACKING_URI=http://mlflow.internal:5000 is ignored" in warning
    assert "set NIGHTSHIFT_MLFLOW_URI=http://mlflow.internal:5000" in warning
    with_ours = load_settings(home=tmp_path, mlflow_uri="http://mlflow.internal:5000")
    assert with_ours.ignored_mlflow_variable() is None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("NIGHTSHIFT_TIMEZONE", "Mars/Olympus", "unknown timezone"),
        ("NIGHTSHIFT_DEVICE", "tpu", "device must be"),
        ("NIGHTSHIFT_DEFAULT_COST_SHARE", "1.5", "default_cost_share"),
        ("NIGHTSHIFT_DUCKDB_MEMORY_LIMIT", "lots", "not a size DuckDB takes"),
        ("NIGHTSHIFT_NIGHTLY_CRON", "bogus", "not a cron expression"),
        ("NIGHTSHIFT_NIGHTLY_CRON", "0 2 * *", "five fields"),
        ("NIGHTSHIFT_NON_PRODUCT_SKU_PATTERN", "(POST|DOT", "not a regular expression"),
        ("NIGHTSHIFT_NON_PRODUCT_SKU_PATTERN", "(?!P)\\w+", "lookaround"),
        ("NIGHTSHIFT_NON_PRODUCT_SKU_PATTERN", "(A)\\1", "backreference"),
    ],
)
def test_bad_settings_fail_early(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_settings()


@pytest.mark.parametrize(
    "value",
    ["1GB", "1.25GB", "500 MB", "2gib", "80%", "-1", "1000B", "100", "0", "1.5", "lots", "1 XB"],
)
def test_the_memory_limit_is_refused_exactly_when_duckdb_would_refuse_it(value: str) -> None:
    """A limit DuckDB cannot read stopped the night at its first connection, with DuckDB's
    traceback; the setting now refuses it when it is read, and refuses nothing DuckDB takes."""
    import duckdb

    try:
        duckdb.connect(config={"memory_limit": value}).close()
        duckdb_takes = True
    except duckdb.Error:
        duckdb_takes = False
    try:
        load_settings(duckdb_memory_limit=value)
        we_take = True
    except ConfigError:
        we_take = False
    assert we_take == duckdb_takes


@pytest.mark.parametrize(
    "cron", ["0 2 * * *", "*/15 1-5 * jan,jul mon-fri", "@daily", "30 23 L * ?"]
)
def test_cron_lines_of_the_right_shape_are_taken(cron: str) -> None:
    assert load_settings(nightly_cron=cron).nightly_cron == cron


@pytest.mark.parametrize(
    ("requested", "cuda", "expected"),
    [
        ("auto", True, "cuda"),
        ("auto", False, "cpu"),
        ("cpu", True, "cpu"),
        ("cuda:1", True, "cuda:1"),
    ],
)
def test_device_choice_prefers_cuda_unless_told_otherwise(
    requested: str, cuda: bool, expected: str
) -> None:
    assert choose_device(requested, cuda) == expected


def test_asking_for_cuda_without_it_is_an_error() -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        choose_device("cuda", cuda_available=False)


def test_branches_run_one_at_a_time_unless_there_are_cores_to_spare() -> None:
    from nightshift.settings import default_branch_concurrency

    assert [default_branch_concurrency(n) for n in (None, 1, 2, 4, 8, 32)] == [1, 1, 1, 1, 2, 8]
