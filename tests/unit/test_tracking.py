"""A branch's child run ends FINISHED or FAILED in a real local MLflow store, never RUNNING."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tasks.runs import RunContext
from tasks.tracking import child_run, start_parent_run, tracking_client
from tests.conftest import settings_at


def test_a_child_run_finishes_with_its_block_and_fails_with_it(tmp_path: Path) -> None:
    settings = settings_at(tmp_path)
    as_of = date(2024, 6, 1)
    parent = start_parent_run.fn(settings, "run-1", as_of, "flow-1", params={})
    run = RunContext(run_id="run-1", as_of=as_of, flow_run_id="flow-1", mlflow_run_id=parent)
    with child_run(settings, run, "segments") as finished:
        pass
    with pytest.raises(KeyboardInterrupt), child_run(settings, run, "demand") as failed:
        raise KeyboardInterrupt  # a cancelled task: not an Exception, still a failed branch
    client = tracking_client(settings)
    assert client.get_run(finished).info.status == "FINISHED"
    assert client.get_run(failed).info.status == "FAILED"
    for child in (finished, failed):
        tags = client.get_run(child).data.tags
        assert tags["mlflow.parentRunId"] == parent and tags["nightshift.run_id"] == "run-1"
