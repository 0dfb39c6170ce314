"""The contract between the nightly spine and a model branch.

A branch is one Prefect task `branch(settings, run: RunContext) -> BranchResult`: it reads
features from the warehouse, trains and evaluates against its baseline, logs a child MLflow
run, and writes its mart(s) into the warehouse's `marts` schema with lineage columns. The
spine publishes whatever marts the branches name. Adding a model family is that task plus one
line in `flows.nightly.MODEL_BRANCHES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BranchResult:
    name: str
    marts: list[str]  # registry names in nightshift.tables.MARTS
    model: str  # model name and version, or "baseline" when the gate kept the baseline
    metrics: dict[str, float] = field(default_factory=dict)
    baseline_metrics: dict[str, float] = field(default_factory=dict)
    promoted: bool = False
    mlflow_run_id: str | None = None
    gate: str = ""  # why the model was or was not promoted, in words
    # The model version this night registered ("3" of `registered_name`). The spine points
    # its `champion` alias at it, when promoted, only once the night's marts are published.
    registered_name: str | None = None
    registered_version: str | None = None
