"""Query benchmark: `nightshift query` on a history-sized result, beside fetching it whole.

A `_history` view holds every night's rows: a year of `demand_forecast` on `medium` is
about 50M rows. The peer is what `nightshift query` did before it streamed: the whole
result fetched into one Polars frame (DuckDB's `.pl()`), then formatted. Both read the
same marts file, read-only, each in its own process, so each peak RSS is its own.
Machines are noisy: compare the ratios, and read absolute times only beside the peer's.

Usage: python bench/query.py [--rows 20000000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, run_stage

QUERY = "select * from demand_forecast_history"


def build_marts(home: Path, rows: int) -> None:
    """A marts.duckdb with a history-shaped table of `rows` rows: dated, per SKU, with
    quantiles, a model name and a run id, as the published forecast history holds."""
    import duckdb

    with duckdb.connect(str(home / "marts.duckdb")) as con:
        con.execute(
            """
            create table demand_forecast_history as
            select date '2025-01-01' + (range // 133_000)::int as as_of,
                   'SKU' || lpad((range % 5_000)::varchar, 5, '0') as sku,
                   date '2025-01-02' + (range % 28)::int as date,
                   (range % 17) * 0.5 as q10, (range % 17) * 1.0 as q50,
                   (range % 17) * 1.8 as q90, 'nightshift-demand/3' as model,
                   'run-' || (range // 133_000) as run_id
            from range($rows)
            """,
            {"rows": rows},
        )


def stage_peer(home: Path, fmt: str) -> dict:
    """Fetch the whole result, then format it: what `nightshift query` did before."""
    import duckdb

    start = time.perf_counter()
    con = duckdb.connect(str(home / "marts.duckdb"), read_only=True)
    frame = con.sql(QUERY).pl()
    if fmt == "csv":
        with open("/dev/null", "w") as sink:
            sink.write(frame.write_csv())
    else:
        str(frame.head(50))
    return {"seconds": time.perf_counter() - start, "rows": frame.height}


def stage_ours(home: Path, fmt: str) -> dict:
    """`nightshift query` itself, its output thrown away; the child's peak RSS is read from
    this process's children."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "nightshift.cli", "query", QUERY, "--format", fmt, "--home", str(home)],
        stdout=subprocess.DEVNULL, check=True, cwd=ROOT,
    )  # fmt: skip
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": time.perf_counter() - start, "child_rss_mb": child_mb}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--format", default="csv", choices=["csv", "table"])
    parser.add_argument("--stage", choices=["peer", "ours"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.stage:
        sys.path.insert(0, str(ROOT))
        stage = stage_peer if args.stage == "peer" else stage_ours
        result = stage(args.workdir, args.format)
        result["peak_rss_mb"] = result.pop(
            "child_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        )
        print(json.dumps(result))
        return

    home = args.workdir or Path(tempfile.mkdtemp(prefix="nightshift-bench-query-"))
    try:
        build_marts(home, args.rows)
        print(f"`{QUERY}`: {args.rows:,} rows")
        print(f"{'format':<8}{'stage':<38}{'seconds':>9}{'peak RSS MB':>13}")
        for fmt in ("table", "csv"):
            stage = ["--format", fmt, "--workdir", str(home), "--stage"]
            peer = run_stage(__file__, [*stage, "peer"])
            ours = run_stage(__file__, [*stage, "ours"])
            for name, result in (("peer: fetch whole, then format", peer), ("nightshift query (streamed)", ours)):  # fmt: skip
                print(f"{fmt:<8}{name:<38}{result['seconds']:>9.1f}{result['peak_rss_mb']:>13,.0f}")
            print(
                f"{fmt:<8}streamed / whole: {ours['seconds'] / peer['seconds']:.2f}x the time, "
                f"{ours['peak_rss_mb'] / peer['peak_rss_mb']:.2f}x the peak RSS"
            )
    finally:
        if args.workdir is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
