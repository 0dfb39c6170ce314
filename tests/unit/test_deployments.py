"""Deployments: prefect.yaml and `nightshift serve` declare the same ones, and the parameters
are typed so the Prefect UI shows a date picker and choice lists."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import get_args

import pytest
import yaml
from prefect.utilities.callables import parameter_schema

from flows.adhoc import backfill, backfill_days, retrain
from flows.deployments import build_deployments
from flows.nightly import (
    MODEL_BRANCHES,
    TORCH_BRANCHES,
    ModelName,
    ShopProfile,
    nightly,
    source_label,
)
from flows.train_branch import train_branch
from nightshift.errors import ConfigError
from nightshift.generator import PROFILES
from nightshift.services import deploy_env
from nightshift.settings import load_settings
from tasks.branch import BranchResult
from tasks.routing import read_branch_result, write_branch_result

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prefect_yaml() -> dict:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())


def test_the_ui_choice_list_is_every_model_branch() -> None:
    assert list(get_args(ModelName)) == list(MODEL_BRANCHES)
    assert set(TORCH_BRANCHES) == {"recommender", "demand"}


def test_as_of_is_a_date_picker_and_models_a_choice_list() -> None:
    props = parameter_schema(nightly).model_dump()["properties"]
    assert {"format": "date", "type": "string"} in props["as_of"]["anyOf"]
    array = next(v for v in props["models"]["anyOf"] if v.get("type") == "array")
    assert array["items"]["enum"] == list(MODEL_BRANCHES)
    retrain_props = parameter_schema(retrain).model_dump()["properties"]
    assert retrain_props["model"]["enum"] == list(MODEL_BRANCHES)
    backfill_schema = parameter_schema(backfill).model_dump()
    assert backfill_schema["required"] == ["start", "end"]
    assert backfill_schema["properties"]["start"] == {
        **backfill_schema["properties"]["start"],
        "format": "date",
        "type": "string",
    }
    branch = parameter_schema(train_branch).model_dump()["properties"]["branch"]
    assert branch["enum"] == list(TORCH_BRANCHES)


def test_the_ui_offers_every_source_and_synthetic_profile() -> None:
    props = parameter_schema(nightly).model_dump()["properties"]
    assert props["source"]["enum"] == ["landing", "online-retail"]
    assert props["source"]["default"] == "landing"
    profiles = next(v for v in props["profile"]["anyOf"] if "enum" in v)
    assert profiles["enum"] == list(get_args(ShopProfile)) == list(PROFILES)


@pytest.mark.parametrize(
    ("source", "path", "profile", "label_or_error"),
    [
        ("landing", None, None, "landing"),
        ("landing", None, "small", "landing"),
        ("online-retail", "/data/sales.csv", None, "online-retail:/data/sales.csv"),
        ("online-retail", None, None, "needs source_path"),
        ("online-retail", "/data/sales.csv", "tiny", "cannot be combined"),
        ("landing", "/data/sales.csv", None, "only read with source online-retail"),
    ],
)
def test_source_parameters_that_mean_nothing_are_refused_before_the_night(
    source: str, path: str | None, profile: str | None, label_or_error: str
) -> None:
    if label_or_error in {"landing", f"online-retail:{path}"}:
        assert source_label(source, path, profile) == label_or_error
    else:
        with pytest.raises(ConfigError, match=label_or_error):
            source_label(source, path, profile)


def test_prefect_yaml_and_serve_declare_the_same_deployments(prefect_yaml: dict) -> None:
    settings = load_settings(timezone="Europe/London")
    served = {(d.flow_name, d.name): d for d in build_deployments(settings)}
    declared = {}
    for entry in prefect_yaml["deployments"]:
        path, _, function = entry["entrypoint"].partition(":")
        assert (ROOT / path).exists(), entry["entrypoint"]
        from prefect.flows import load_flow_from_entrypoint

        flow = load_flow_from_entrypoint(str(ROOT / entry["entrypoint"]))
        declared[(flow.name, entry["name"])] = entry
    assert (
        set(declared)
        == set(served)
        == {
            ("nightly", "nightly"),
            ("retrain", "retrain"),
            ("backfill", "backfill"),
            ("train-branch", "gpu"),
        }
    )
    for key, entry in declared.items():
        deployment = served[key]
        if "concurrency_limit" in entry:
            assert entry["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
            assert deployment.concurrency_limit == 1
            assert deployment.concurrency_options.collision_strategy.value == "ENQUEUE"
        else:
            assert deployment.concurrency_limit is None
    assert settings.gpu_deployment == "train-branch/gpu"


def test_nightly_runs_at_two_in_the_shops_timezone(prefect_yaml: dict) -> None:
    nightly_entry = next(d for d in prefect_yaml["deployments"] if d["name"] == "nightly")
    assert nightly_entry["schedules"] == [
        {"cron": "{{ $NIGHTSHIFT_NIGHTLY_CRON }}", "timezone": "{{ $NIGHTSHIFT_TIMEZONE }}"}
    ]
    settings = load_settings(timezone="Europe/London")
    env = deploy_env(settings, {})
    assert env["NIGHTSHIFT_NIGHTLY_CRON"] == "0 2 * * *"
    assert env["NIGHTSHIFT_TIMEZONE"] == "Europe/London"
    assert Path(env["NIGHTSHIFT_PROJECT_DIR"]) == ROOT
    # the caller's environment wins over settings
    assert deploy_env(settings, {"NIGHTSHIFT_CPU_POOL": "mine"})["NIGHTSHIFT_CPU_POOL"] == "mine"
    (schedule,) = build_deployments(settings)[0].schedules
    assert schedule.schedule.cron == "0 2 * * *"
    assert schedule.schedule.timezone == "Europe/London"
    assert build_deployments(settings, schedule=False)[0].schedules == []


def test_backfill_days_are_inclusive_oldest_first_and_refuse_bad_ranges() -> None:
    today = date(2024, 7, 1)
    assert backfill_days(date(2024, 6, 28), date(2024, 6, 30), today) == [
        date(2024, 6, 28),
        date(2024, 6, 29),
        date(2024, 6, 30),
    ]
    with pytest.raises(ConfigError, match="before its start"):
        backfill_days(date(2024, 6, 30), date(2024, 6, 28), today)
    with pytest.raises(ConfigError, match="in the future"):
        backfill_days(date(2024, 6, 30), date(2024, 7, 2), today)


def test_a_routed_branch_result_survives_the_trip(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path)
    result = BranchResult(
        "demand",
        ["demand_forecast"],
        "nightshift-demand/3",
        {"mase": 0.8},
        {"mase": 1.0},
        True,
        "abc",
        "ok",
    )
    write_branch_result(settings, "run-1", result)
    assert read_branch_result(settings, "run-1", "demand") == result
    with pytest.raises(Exception, match="share NIGHTSHIFT_HOME"):
        read_branch_result(settings, "run-1", "recommender")
