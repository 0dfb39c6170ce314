"""Shared by the benchmarks: build a warehouse to benchmark on, run a stage in its own
process (so each peer's peak RSS is its own)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYNTHETIC_END = date(2024, 6, 30)


def prepare_warehouse(workdir: Path, profile: str, online_retail: Path | None) -> dict:
    """Land (generate, or convert Online Retail), ingest and build features into `workdir`;
    the synthetic landing files are reused when the workdir already has them."""
    from nightshift.settings import load_settings
    from tasks.features import build_features
    from tasks.ingest import ingest_landing

    settings = load_settings(home=workdir)
    as_of = SYNTHETIC_END
    if online_retail is not None:
        import polars as pl

        from nightshift.online_retail import write_landing_files

        orders, _ = write_landing_files(
            online_retail, settings.landing_dir, settings.non_product_sku_pattern,
            settings.active_window_days,
        )  # fmt: skip
        as_of = date.fromisoformat(str(pl.read_parquet(orders)["ordered_at"].max())[:10])
    elif not (settings.landing_dir / "orders").exists():
        from nightshift.generator import generate_shop

        generate_shop(profile, settings.landing_dir, seed=7, end=SYNTHETIC_END)
    ingest_landing.fn(settings, "bench")
    build_features.fn(settings, as_of)
    return {"as_of": as_of.isoformat()}


def run_stage(script: str, args: list[str]) -> dict:
    """Run `script --stage ...` in a fresh interpreter; its last stdout line is JSON."""
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"stage {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
