"""Hand-over of a branch's outcome between processes.

A branch routed to another worker (the GPU pool) writes its marts into the shared home's
warehouse like any branch; its `BranchResult` travels back as a small JSON file under the
home rather than through Prefect result storage, so nothing beyond the shared home has to be
configured on the workers.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from nightshift.errors import NightshiftError
from nightshift.settings import Settings
from tasks.branch import BranchResult


def branch_result_path(settings: Settings, run_id: str, branch: str) -> Path:
    return settings.branch_results_dir / run_id / f"{branch}.json"


def write_branch_result(settings: Settings, run_id: str, result: BranchResult) -> Path:
    """Write atomically (temp file + rename) so a reader never sees half a result."""
    path = branch_result_path(settings, run_id, result.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(result), indent=2))
    tmp.replace(path)
    return path


def read_branch_result(settings: Settings, run_id: str, branch: str) -> BranchResult:
    path = branch_result_path(settings, run_id, branch)
    try:
        return BranchResult(**json.loads(path.read_text()))
    except FileNotFoundError:
        raise NightshiftError(
            f"{branch} finished on another worker but left no result at {path}: do the "
            "workers share NIGHTSHIFT_HOME?"
        ) from None
