"""The whole nightly flow on `small` and `medium`: wall time per stage and in total, peak RSS
of the whole process tree, and the share of time spent importing.

    python bench/nightly.py [--profiles small medium] [--workdir DIR]

Each night runs in a fresh interpreter (`--stage run`) exactly as `nightshift run` does:
Prefect's ephemeral API, a local MLflow store, all five branches. Per-stage times are the
task runs' own start and end times, read back from Prefect. Peak RSS is sampled every 0.2 s
over the process and all its children (the Prefect server, the planner's worker processes),
summed: what the machine must hold at once.

The peer, measured in the same run on the same landing files, is the floor any pipeline
pays: DuckDB reading every landing file once (`count(*)` over `read_csv`). Targets (issue
8): small <= 3 min, medium <= 20 min on 2 CPU cores, peak RSS <= 4 GB. Machines are noisy:
read the absolute times beside the peer's.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()  # before any heavy import: the import share is measured from here

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, SYNTHETIC_END, run_stage  # noqa: E402

TARGET_SECONDS = {"small": 180, "medium": 1200}
TARGET_RSS_GB = 4.0
# Task runs inside another stage's task (mapped batches): shown, not added to the total.
NESTED = {"plan-inventory-batch": "inventory"}


class TreeRss:
    """Peak of the summed RSS of this process and its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.2) -> None:
        import psutil

        self.me = psutil.Process()
        self.interval = interval
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def sample(self) -> None:
        import psutil

        while not self.stop.is_set():
            total = 0
            for proc in [self.me, *self.me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # it may have exited meanwhile
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            self.stop.wait(self.interval)

    def __enter__(self) -> TreeRss:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def stage_spans(flow_run_id: str) -> dict[str, tuple[float, float]]:
    """(start, end) epoch seconds per stage: each stage is its first start to its last end
    (summing mapped batches per name would be wrong for parallel work)."""
    from nightshift.runlog import task_run_spans

    return {
        name: (start.timestamp(), end.timestamp())
        for name, (start, end) in task_run_spans(flow_run_id).items()
    }


def run_night(home: Path) -> dict:
    """One whole night in this process (as `nightshift run` does)."""
    from nightshift.cli import use_prefect_home
    from nightshift.settings import load_settings

    os.environ["NIGHTSHIFT_HOME"] = str(home)
    use_prefect_home(load_settings(home=home))  # the Prefect environment `nightshift run` sets
    with TreeRss() as rss:
        from nightshift.prefect_api import ephemeral_api_starting

        with ephemeral_api_starting():  # as `nightshift run` does
            import mlflow  # noqa: F401
            import pulp  # noqa: F401
            import sklearn  # noqa: F401
            import statsmodels.api  # noqa: F401
            import torch  # noqa: F401

            from flows.nightly import nightly

        imported = time.perf_counter()
        result = nightly(as_of=SYNTHETIC_END)
        done = time.perf_counter()
    import duckdb

    with duckdb.connect(str(home / "marts.duckdb"), read_only=True) as con:
        (flow_run_id,) = con.execute(
            "select flow_run_id from runs where run_id = $r", {"r": result["run_id"]}
        ).fetchone()
    stages = stage_spans(flow_run_id)
    return {
        "total_s": done - T0,
        "import_s": imported - T0,
        "flow_s": done - imported,
        "stages": stages,
        "peak_rss_gb": rss.peak / 2**30,
        "status": result["status"],
        "failed_branches": result["failed_branches"],
    }


def peer_read(home: Path) -> dict:
    """DuckDB reading every landing file once: the floor of any nightly pipeline."""
    import duckdb

    start = time.perf_counter()
    con = duckdb.connect()
    rows = 0
    for table in ("orders", "events", "products", "inventory"):
        files = sorted(str(p) for p in (home / "landing" / table).glob("*.csv"))
        if files:
            rows += con.execute(
                "select count(*) from read_csv($f, all_varchar = true, quote = '\"')", {"f": files}
            ).fetchone()[0]
    return {"seconds": time.perf_counter() - start, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=["run", "peer"])
    parser.add_argument("--home", type=Path)
    parser.add_argument("--profiles", nargs="+", default=["small", "medium"])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/nightshift_bench_nightly"))
    args = parser.parse_args()
    if args.stage == "run":
        print(json.dumps(run_night(args.home)))
        return
    if args.stage == "peer":
        print(json.dumps(peer_read(args.home)))
        return

    from nightshift.generator import generate_shop

    script = str(Path(__file__).resolve())
    for profile in args.profiles:
        home = args.workdir / profile
        for stale in ("warehouse.duckdb", "marts.duckdb", "mlflow", "exports", "prefect", "runs"):
            target = home / stale
            if target.is_dir():
                import shutil

                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        if not (home / "landing" / "orders").exists():
            generate_shop(profile, home / "landing", seed=7, end=SYNTHETIC_END)
        peer = run_stage(script, ["--stage", "peer", "--home", str(home)])
        night = run_stage(script, ["--stage", "run", "--home", str(home)])
        target = TARGET_SECONDS.get(profile)
        print(f"\n== {profile}: {peer['rows']:,} landing rows; status {night['status']} "
              f"{night['failed_branches'] or ''}")  # fmt: skip
        print(f"  peer  DuckDB reads the landing files once: {peer['seconds']:8.1f} s")
        print(f"  night total (fresh interpreter to done):   {night['total_s']:8.1f} s  "
              f"= {night['total_s'] / peer['seconds']:.0f}x the peer"
              + (f"; target <= {target} s: {'met' if night['total_s'] <= target else 'MISSED'}"
                 if target else ""))  # fmt: skip
        print(f"  importing libraries (Prefect's API starting meanwhile): {night['import_s']:5.1f} s  "
              f"({night['import_s'] / night['total_s']:.1%} of the night)")  # fmt: skip
        print(f"  peak RSS, whole process tree:              {night['peak_rss_gb']:8.2f} GB "
              f"(target <= {TARGET_RSS_GB} GB: "
              f"{'met' if night['peak_rss_gb'] <= TARGET_RSS_GB else 'MISSED'})")  # fmt: skip
        from flows.nightly import MODEL_BRANCHES as BRANCHES  # together: first start to last end

        spans = night["stages"]
        seconds = {name: end - start for name, (start, end) in spans.items()}
        branch_spans = [spans[name] for name in BRANCHES if name in spans]
        branches_wall = (
            max(end for _, end in branch_spans) - min(start for start, _ in branch_spans)
            if branch_spans
            else 0.0
        )
        accounted = branches_wall + sum(
            v for k, v in seconds.items() if k not in NESTED and k not in BRANCHES
        )
        print(f"  stages (task run wall time; the flow's remaining {night['flow_s'] - accounted:.1f} s "
              "is what is left of Prefect's API start-up, and orchestration):")  # fmt: skip
        print(f"    {'model branches, together':<26} {branches_wall:8.1f} s  "
              f"{branches_wall / night['total_s']:6.1%}  (concurrent: first start to last end; "
              f"{sum(seconds[name] for name in BRANCHES if name in seconds):.1f} s summed)")  # fmt: skip
        for name, value in sorted(seconds.items(), key=lambda kv: -kv[1]):
            within = f"  (within {NESTED[name]})" if name in NESTED else ""
            within = "  (a branch)" if name in BRANCHES else within
            print(f"    {name:<26} {value:8.1f} s  {value / night['total_s']:6.1%}{within}")
    print(f"\n(run from {ROOT})")


if __name__ == "__main__":
    main()
