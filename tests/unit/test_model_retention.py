"""Old registered model versions are deleted with their files; the champion never is."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from nightshift.retention import beyond_newest
from tasks.branch import BranchResult
from tasks.tracking import (
    log_sklearn_model,
    logged_model_id,
    promote_champions,
    prune_model_versions,
    start_child_run,
    tracking_client,
)
from tests.conftest import settings_at


@pytest.mark.parametrize(
    ("keep", "protected", "pruned"),
    [
        (2, set(), ["1", "2", "8"]),  # numeric order, not text order: "10" is newer than "9"
        (2, {"2"}, ["1", "8"]),
        (5, set(), []),
        (0, set(), []),  # 0 keeps every version
    ],
)
def test_versions_beyond_the_newest_are_pruned_except_protected_ones(
    keep: int, protected: set[str], pruned: list[str]
) -> None:
    assert beyond_newest(["9", "10", "1", "8", "2"], keep, protected, key=int) == pruned


def test_pruning_deletes_old_versions_and_their_files_but_keeps_the_champion(
    tmp_path: Path,
) -> None:
    settings = settings_at(tmp_path, model_versions_kept=2)
    x = np.arange(8, dtype=float).reshape(4, 2)
    model = LinearRegression().fit(x, x.sum(axis=1))
    for night in range(5):
        run = start_child_run(settings, None, "segments", f"run-{night}", date(2024, 6, 1 + night))
        version = log_sklearn_model(settings, run, model, x[:1], "nightshift-test")
        # night 1's version (2) is the champion: later ones failed their gate
        tonight = BranchResult(
            "segments", [], "", promoted=night == 1,
            registered_name="nightshift-test", registered_version=version,
        )  # fmt: skip
        promote_champions.fn(settings, [tonight])
    client = tracking_client(settings)
    before = {
        str(v.version): logged_model_id(v)
        for v in client.search_model_versions("name = 'nightshift-test'")
    }
    files = {
        version: Path(client.get_logged_model(model_id).artifact_location.removeprefix("file://"))
        for version, model_id in before.items()
    }
    assert all(path.is_dir() for path in files.values())

    assert prune_model_versions.fn(settings) == {"nightshift-test": ["1", "3"]}

    after = {str(v.version) for v in client.search_model_versions("name = 'nightshift-test'")}
    assert after == {"2", "4", "5"}
    assert client.get_registered_model("nightshift-test").aliases == {"champion": 2}
    assert [v for v, path in sorted(files.items()) if path.exists()] == ["2", "4", "5"]
    # a pruned logged model leaves no empty models/m-<id> folder behind
    assert [v for v, path in sorted(files.items()) if path.parent.exists()] == ["2", "4", "5"]
    assert all(path.parent.name.startswith("m-") for path in files.values())
    # a second pass has nothing left to do
    assert prune_model_versions.fn(settings) == {}
