"""Pricing benchmark: the MILP on 10k SKUs x a 10-price ladder with category price-index
bands, solved by CBC and by HiGHS, beside the LP relaxation that bounds it.

The instance is synthetic and seeded: 10,000 SKUs in 20 categories, prices 2-40, costs
40-90% of price, elasticities -3.5..-0.3, 28-day expected units 0-200 and stock that binds
for about a fifth of the SKUs; a 10-step ladder (-20%..+25%), 5% minimum margin, 20% maximum
change and each category's mean price index within +-3%. Each solver runs in its own
process (fresh imports, its own peak RSS).

Reports, per solver: model build time (ladder filtering + PuLP model), solve time, status,
objective, the gap to the LP relaxation's bound, and peak RSS.
Target (issue 7): <= 10 s to proven optimality (or the 0.1% MIP gap).

Usage: python bench/pricing.py [--skus 10000] [--categories 20]
Needs highspy for the HiGHS rows (in the project's dependencies).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np
from common import ROOT, run_stage

STEPS = (-0.2, -0.15, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2, 0.25)


def instance(skus: int, categories: int, seed: int = 0):
    from models.pricing import PricingProblem

    rng = np.random.default_rng(seed)
    price = np.round(rng.uniform(2, 40, skus), 2)
    base_units = rng.uniform(0, 200, skus)
    return PricingProblem(
        sku=np.array([f"S{i:05d}" for i in range(skus)], dtype=object),
        category=np.array([f"c{i % categories:02d}" for i in range(skus)]),
        current_price=price,
        unit_cost=np.round(price * rng.uniform(0.4, 0.9, skus), 2),
        elasticity=rng.uniform(-3.5, -0.3, skus),
        base_units=base_units,
        available=np.where(rng.random(skus) < 0.2, base_units * rng.uniform(0.5, 1.0, skus), 1e9),
    )


def stage(solver: str, relax: bool, skus: int, categories: int) -> dict:
    from models.pricing import PricingConfig, optimise_prices

    problem = instance(skus, categories)
    config = PricingConfig(
        steps=STEPS, category_band=0.03, solver=solver, time_limit_seconds=120, mip_gap=0.001
    )
    start = time.perf_counter()
    _, solution = optimise_prices(problem, config, relax=relax)
    return {
        "total_seconds": time.perf_counter() - start,
        "build_seconds": solution.build_seconds,
        "solve_seconds": solution.solve_seconds,
        "status": solution.status,
        "objective": solution.objective,
        "infeasible": len(solution.infeasible),
        "solver": solution.solver,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--categories", type=int, default=20)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--relax", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        sys.path.insert(0, str(ROOT))
        result = stage(args.stage, args.relax, args.skus, args.categories)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    common = ["--skus", str(args.skus), "--categories", str(args.categories)]
    runs = {
        "LP relaxation (HiGHS)": run_stage(__file__, ["--stage", "highs", "--relax", *common]),
        "MILP, HiGHS": run_stage(__file__, ["--stage", "highs", *common]),
        "MILP, CBC": run_stage(__file__, ["--stage", "cbc", *common]),
    }
    bound = runs["LP relaxation (HiGHS)"]["objective"]
    print(
        f"{args.skus:,} SKUs x {len(STEPS)}-price ladder, {args.categories} categories with a "
        f"+-3% price-index band"
    )
    print(
        f"{'run':<24}{'build s':>9}{'solve s':>9}{'total s':>9}{'RSS MB':>8}"
        f"{'objective':>16}{'gap to LP':>11}  status"
    )
    for name, run in runs.items():
        gap = (bound - run["objective"]) / bound if bound else float("nan")
        print(
            f"{name:<24}{run['build_seconds']:>9.2f}{run['solve_seconds']:>9.2f}"
            f"{run['total_seconds']:>9.2f}{run['peak_rss_mb']:>8,.0f}{run['objective']:>16,.2f}"
            f"{gap:>11.5%}  {run['status']}"
        )
    highs, cbc = runs["MILP, HiGHS"], runs["MILP, CBC"]
    print(f"CBC / HiGHS total time: {cbc['total_seconds'] / highs['total_seconds']:.1f}x")
    for name in ("MILP, HiGHS", "MILP, CBC"):
        run = runs[name]
        ok = run["total_seconds"] <= 10 and run["status"] == "optimal"
        print(
            f"{name}: {run['total_seconds']:.1f} s to {run['status']} "
            f"({'meets' if ok else 'MISSES'} the <= 10 s target)"
        )


if __name__ == "__main__":
    main()
