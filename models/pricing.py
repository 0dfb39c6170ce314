"""Profit-maximising prices: per-SKU price elasticity, then a MILP that picks one price per
SKU from a ladder under business rules.

Elasticity. For each SKU a Poisson GLM with a log link,
`log E[units_t] = a + e * log(price_t) + b * years_t + dow_t + log(category_units_t)`, where
the offset is the rest of the SKU's category on the same day. The offset carries the weekly
pattern, the category's yearly season and the shop's growth, which the trend and
day-of-week terms alone cannot (a Christmas category triples in December; a price step that happens
to land in November would otherwise look like a very elastic product). Poisson, not OLS on
`log(units)`: most SKU-days sell zero, and `log(1 + units)` biases elasticities towards 0.
The standard error is scaled by the Pearson dispersion (retail counts are over-dispersed).

Shrinkage. Price varies little for most SKUs, so one SKU's estimate is often noise. Each
category's pooled elasticity is the precision-weighted mean of its SKUs' estimates, with the
between-SKU variance tau^2 from DerSimonian-Laird; a SKU's elasticity is
`w * own + (1 - w) * category` with `w = tau^2 / (tau^2 + se^2)`. Its source is `sku` when
`w >= 0.5`, else `category`; a category with too few estimates uses the configured default
(`default`). Results are clipped to a sane range.

Optimiser. A SKU's candidate prices are its current price times the configured steps
(optionally rounded to .99 endings). Expected units over the horizon are the units forecast
at the current price scaled by `(p / p0) ** e`. Per-SKU rules — margin, maximum change,
stock — are checked per candidate and the candidates that break one are dropped before the
model is built (the same optimum as writing them as constraints, at a fraction of the build
and solve time). What couples SKUs — each category's average price index staying within a
band — is a constraint. A SKU with no admissible candidate, or a category whose band cannot
be met, keeps its current price and reports why; a solver failure keeps every current price.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

RULES = ("min_margin", "max_change", "stock")


@dataclass(frozen=True)
class ElasticityConfig:
    default: float = -1.5  # used where neither the SKU nor its category says anything
    bounds: tuple[float, float] = (-4.0, -0.2)
    min_days: int = 56
    min_units: float = 10.0
    min_log_price_sd: float = 0.01  # below this the SKU's price barely moved: no own estimate
    min_category_skus: int = 3


@dataclass(frozen=True)
class SkuElasticity:
    estimate: float | None  # the SKU's own GLM estimate (None when not estimable)
    se: float | None
    reason: str  # why there is no own estimate, or ""


def fit_sku_elasticity(
    units: np.ndarray,
    price: np.ndarray,
    category_units: np.ndarray,
    days: np.ndarray,
    config: ElasticityConfig,
) -> SkuElasticity:
    """One SKU's Poisson GLM (see the module docstring); `days` are days since 1970-01-01."""
    import statsmodels.api as sm

    from models.fit_warnings import ignore_expected_fit_warnings

    y = np.maximum(np.asarray(units, dtype=np.float64), 0.0)
    price = np.asarray(price, dtype=np.float64)
    if y.size < config.min_days:
        return SkuElasticity(None, None, "short history")
    if y.sum() < config.min_units:
        return SkuElasticity(None, None, "too few units")
    if not (np.isfinite(price) & (price > 0)).all():
        # log(price) is the regressor: a day without a positive price has no place in it
        return SkuElasticity(None, None, "price not positive on every day")
    log_price = np.log(price)
    if log_price.std() < config.min_log_price_sd:
        return SkuElasticity(None, None, "no price variation")
    day_numbers = np.asarray(days, dtype=np.int64)
    years = (day_numbers - day_numbers[0]) / 365.25
    weekday = (day_numbers + 3) % 7  # 0 = Monday when days count from 1970-01-01
    dummies = [(weekday == d).astype(np.float64) for d in range(1, 7)]
    design = np.column_stack([np.ones_like(y), log_price - log_price.mean(), years, *dummies])
    offset = np.log(np.asarray(category_units, dtype=np.float64) + 1.0)
    ignore_expected_fit_warnings()
    try:
        result = sm.GLM(y, design, family=sm.families.Poisson(), offset=offset).fit()
    except (ValueError, np.linalg.LinAlgError) as exc:
        return SkuElasticity(None, None, f"fit failed: {exc}")
    estimate, se = float(result.params[1]), float(result.bse[1])
    dispersion = max(float(result.pearson_chi2) / max(result.df_resid, 1.0), 1.0)
    se *= np.sqrt(dispersion)
    if not (np.isfinite(estimate) and np.isfinite(se) and se > 0):
        return SkuElasticity(None, None, "fit did not converge")
    return SkuElasticity(estimate, se, "")


def pooled_estimate(estimates: np.ndarray, ses: np.ndarray) -> tuple[float, float]:
    """Random-effects mean and between-SKU variance tau^2 (DerSimonian-Laird)."""
    weights = 1.0 / ses**2
    fixed = float((weights * estimates).sum() / weights.sum())
    q = float((weights * (estimates - fixed) ** 2).sum())
    denominator = weights.sum() - (weights**2).sum() / weights.sum()
    tau2 = max(0.0, (q - (estimates.size - 1)) / denominator) if denominator > 0 else 0.0
    random_weights = 1.0 / (ses**2 + tau2)
    return float((random_weights * estimates).sum() / random_weights.sum()), tau2


@dataclass(frozen=True)
class Elasticities:
    elasticity: np.ndarray
    se: np.ndarray  # of the shrunk estimate; the category's spread for category/default
    source: np.ndarray  # sku | category | default
    own_estimate: np.ndarray  # nan where not estimable
    category: dict[str, float]  # pooled elasticity per category (default where too few)


def shrink_elasticities(
    fits: list[SkuElasticity], categories: list[str], config: ElasticityConfig
) -> Elasticities:
    """Shrink each SKU's estimate towards its category's pooled one (module docstring)."""
    n = len(fits)
    own = np.array([np.nan if f.estimate is None else f.estimate for f in fits])
    own_se = np.array([np.nan if f.se is None else f.se for f in fits])
    cats = np.asarray(categories, dtype=object)
    elasticity, se = np.full(n, config.default), np.full(n, np.nan)
    source = np.full(n, "default", dtype=object)
    pooled: dict[str, float] = {}
    for name in sorted(set(categories)):
        members = cats == name
        known = members & np.isfinite(own)
        if known.sum() < config.min_category_skus:
            pooled[name] = config.default
            continue
        mean, tau2 = pooled_estimate(own[known], own_se[known])
        pooled[name] = mean
        weight = np.where(known, tau2 / (tau2 + np.nan_to_num(own_se, nan=np.inf) ** 2), 0.0)
        elasticity[members] = (weight * np.nan_to_num(own) + (1 - weight) * mean)[members]
        se[members] = np.where(
            known, np.sqrt(1.0 / (1.0 / np.nan_to_num(own_se, nan=1.0) ** 2 + 1.0 / max(tau2, 1e-9))),
            np.sqrt(tau2),
        )[members]  # fmt: skip
        source[members] = np.where(weight >= 0.5, "sku", "category")[members]
    low, high = config.bounds
    return Elasticities(
        elasticity=np.clip(elasticity, low, high),
        se=se,
        source=source,
        own_estimate=own,
        category={k: float(np.clip(v, low, high)) for k, v in pooled.items()},
    )


# ---------------------------------------------------------------- optimiser


@dataclass(frozen=True)
class PricingConfig:
    steps: tuple[float, ...] = (-0.2, -0.15, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2)
    charm_endings: bool = False  # round candidates down to .99 (e.g. 12.99)
    min_margin: float = 0.05  # p >= unit_cost * (1 + min_margin)
    max_change: float = 0.2  # |p / p0 - 1| <= max_change
    category_band: float | None = None  # category mean p / p0 within 1 +- band
    solver: str = "auto"  # auto (HiGHS when installed, else CBC) | highs | cbc
    time_limit_seconds: float = 60.0
    mip_gap: float = 0.001


@dataclass(frozen=True)
class PricingProblem:
    sku: np.ndarray
    category: np.ndarray
    current_price: np.ndarray
    unit_cost: np.ndarray
    elasticity: np.ndarray
    base_units: np.ndarray  # expected units over the horizon at the current price
    available: np.ndarray  # stock that can be sold over the horizon


@dataclass(frozen=True)
class Candidates:
    """The price ladder flattened: candidate j belongs to SKU `owner[j]`."""

    owner: np.ndarray
    price: np.ndarray
    units: np.ndarray
    profit: np.ndarray
    ratio: np.ndarray  # price / current price
    violation: np.ndarray  # first rule broken ("" when admissible)


def price_ladder(current: float, config: PricingConfig) -> np.ndarray:
    """Sorted distinct candidate prices; the current price is always one of them."""
    prices = current * (1.0 + np.asarray(config.steps, dtype=np.float64))
    if config.charm_endings:
        prices = np.where(prices >= 1.0, np.floor(prices) - 0.01, np.round(prices, 2))
    else:
        prices = np.round(prices, 2)
    prices = prices[prices > 0]
    return np.unique(np.append(prices, current))


def candidate_table(problem: PricingProblem, config: PricingConfig) -> Candidates:
    owner, price = [], []
    for i, current in enumerate(problem.current_price):
        ladder = price_ladder(float(current), config)
        owner.append(np.full(ladder.size, i))
        price.append(ladder)
    owner_arr, price_arr = np.concatenate(owner), np.concatenate(price)
    p0 = problem.current_price[owner_arr]
    ratio = price_arr / p0
    units = problem.base_units[owner_arr] * ratio ** problem.elasticity[owner_arr]
    cost = problem.unit_cost[owner_arr]
    violation = np.full(owner_arr.size, "", dtype=object)
    tolerance = 1e-9
    checks = {
        "min_margin": price_arr < cost * (1 + config.min_margin) - tolerance,
        "max_change": np.abs(ratio - 1) > config.max_change + tolerance,
        "stock": units > problem.available[owner_arr] + tolerance,
    }
    for rule in reversed(RULES):  # the first rule in RULES order wins
        violation[checks[rule]] = rule
    return Candidates(owner_arr, price_arr, units, (price_arr - cost) * units, ratio, violation)


@dataclass
class PricingSolution:
    chosen: np.ndarray  # candidate index per SKU, -1 where the SKU keeps its current price
    binding: np.ndarray  # per SKU: none | a rule | category_band | infeasible: ...
    status: str  # optimal | feasible (time limit/gap) | fallback: ...
    objective: float
    solve_seconds: float
    build_seconds: float
    solver: str
    infeasible: dict[str, str] = field(default_factory=dict)  # sku or category -> reason


def solver_for(config: PricingConfig, relax: bool = False):
    """A PuLP solver object: HiGHS when asked for or (auto) installed, else CBC."""
    import pulp

    name = config.solver
    if name == "auto":
        name = "highs" if pulp.HiGHS().available() else "cbc"
    options = {"msg": False, "timeLimit": config.time_limit_seconds, "mip": not relax}
    if name == "highs":
        return "highs", pulp.HiGHS(gapRel=config.mip_gap, **options)
    if name == "cbc":
        return "cbc", pulp.PULP_CBC_CMD(gapRel=config.mip_gap, **options)
    raise ValueError(f"unknown solver {config.solver!r}: use auto, highs or cbc")


def group_starts(owner: np.ndarray) -> np.ndarray:
    """Index of each SKU's first candidate (candidates are stored SKU by SKU, in order)."""
    return np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])


def category_reports(
    problem: PricingProblem, cands: Candidates, admissible: np.ndarray, band: float
) -> dict[str, str]:
    """Categories whose price-index band no choice of admissible prices can meet."""
    report: dict[str, str] = {}
    starts = group_starts(cands.owner)
    lowest = np.minimum.reduceat(np.where(admissible, cands.ratio, np.inf), starts)
    highest = np.maximum.reduceat(np.where(admissible, cands.ratio, -np.inf), starts)
    none_left = ~np.isfinite(lowest)  # such SKUs keep their price: index 1
    lowest[none_left], highest[none_left] = 1.0, 1.0
    for name in np.unique(problem.category):
        members = np.flatnonzero(problem.category == name)
        low, high = float(lowest[members].sum()), float(highest[members].sum())
        lower, upper = members.size * (1 - band), members.size * (1 + band)
        if low > upper + 1e-9 or high < lower - 1e-9:
            report[str(name)] = (
                f"category_band: mean price index must lie in [{1 - band:.3f}, {1 + band:.3f}] "
                f"but the admissible prices give [{low / members.size:.3f}, {high / members.size:.3f}]"
            )
    return report


def optimise_prices(
    problem: PricingProblem, config: PricingConfig, relax: bool = False
) -> tuple[Candidates, PricingSolution]:
    """Choose one admissible price per SKU maximising total expected profit.

    `relax=True` solves the LP relaxation (prices may mix): its objective bounds the MILP's.
    Never raises on infeasible input: those SKUs keep their current price with the reason.
    """
    build_start = time.perf_counter()
    cands = candidate_table(problem, config)
    n = problem.sku.size
    admissible = cands.violation == ""
    infeasible: dict[str, str] = {}
    binding = np.full(n, "none", dtype=object)
    has_price = np.bincount(cands.owner[admissible], minlength=n) > 0
    for i in np.flatnonzero(~has_price):
        rules = sorted(set(cands.violation[cands.owner == i]), key=RULES.index)
        binding[i] = "infeasible: " + "+".join(rules)
        infeasible[str(problem.sku[i])] = binding[i]
    if config.category_band is not None:
        for name, reason in category_reports(
            problem, cands, admissible, config.category_band
        ).items():
            members = problem.category == name
            binding[members & (binding == "none")] = "infeasible: category_band"
            infeasible[f"category {name}"] = reason
    in_model = binding == "none"
    build_seconds = time.perf_counter() - build_start
    result = solve_milp(problem, cands, admissible & in_model[cands.owner], in_model, config, relax)
    if result.status == "Infeasible" and config.category_band is not None:
        # The band cannot be met with the ladder's discrete prices somewhere. Categories are
        # independent given the per-SKU rules (the band is the only coupling), so solving
        # them one by one gives the joint optimum: those that cannot keep their prices.
        result = solve_by_category(problem, cands, admissible, in_model, config, relax)
        for name in result.infeasible_categories:
            binding[(problem.category == name) & in_model] = "infeasible: category_band"
            infeasible[f"category {name}"] = (
                f"category_band: no choice of admissible prices keeps the mean price "
                f"index within 1 +- {config.category_band}"
            )
    build_seconds += result.build_seconds
    if result.status != "Optimal":
        failed = PricingSolution(
            np.full(n, -1), binding, f"fallback: solver status {result.status}", 0.0,
            result.solve_seconds, build_seconds, result.solver, infeasible,
        )  # fmt: skip
        return cands, keep_current_prices(failed, "solver fallback")
    if relax:
        return cands, PricingSolution(
            result.chosen, binding, "optimal (LP relaxation)", result.objective,
            result.solve_seconds, build_seconds, result.solver, infeasible,
        )  # fmt: skip
    binding = binding_constraints(problem, cands, result.chosen, binding)
    return cands, PricingSolution(
        result.chosen, binding, "optimal" if result.proven else "feasible", result.objective,
        result.solve_seconds, build_seconds, result.solver, infeasible,
    )  # fmt: skip


@dataclass(frozen=True)
class MilpResult:
    status: str  # PuLP's status name, or "error: ..."
    chosen: np.ndarray  # candidate per SKU, -1 for SKUs not in the model
    objective: float
    proven: bool  # optimal within the gap, not stopped by the time limit
    solver: str
    build_seconds: float
    solve_seconds: float
    infeasible_categories: tuple[str, ...] = ()


def solve_by_category(
    problem: PricingProblem,
    cands: Candidates,
    admissible: np.ndarray,
    in_model: np.ndarray,
    config: PricingConfig,
    relax: bool,
) -> MilpResult:
    """One MILP per category, combined; categories whose own MILP is infeasible are listed
    and their SKUs left out (they keep their prices). Any other failure is the result."""
    chosen = np.full(problem.sku.size, -1)
    objective, proven, build, solve, solver = 0.0, True, 0.0, 0.0, config.solver
    infeasible: list[str] = []
    for name in np.unique(problem.category):
        members = (problem.category == name) & in_model
        alone = solve_milp(
            problem, cands, admissible & members[cands.owner], in_model, config, relax
        )
        build, solve, solver = (
            build + alone.build_seconds,
            solve + alone.solve_seconds,
            alone.solver,
        )
        if alone.status == "Infeasible":
            infeasible.append(str(name))
        elif alone.status != "Optimal":
            return replace(alone, build_seconds=build, solve_seconds=solve)
        else:
            chosen[members] = alone.chosen[members]
            objective += alone.objective
            proven &= alone.proven
    return MilpResult("Optimal", chosen, objective, proven, solver, build, solve, tuple(infeasible))


def solve_milp(
    problem: PricingProblem,
    cands: Candidates,
    use: np.ndarray,
    in_model: np.ndarray,
    config: PricingConfig,
    relax: bool,
) -> MilpResult:
    """Build and solve: one binary per usable candidate, one price per SKU, and each
    category's mean price index (SKUs outside the model count at their current price) in
    its band."""
    import pulp

    build_start = time.perf_counter()
    model = pulp.LpProblem("prices", pulp.LpMaximize)
    index = np.flatnonzero(use)
    kind = pulp.LpContinuous if relax else pulp.LpBinary
    x = {int(j): pulp.LpVariable(f"x{j}", 0, 1, kind) for j in index}
    model += pulp.LpAffineExpression([(x[j], float(cands.profit[j])) for j in x])
    by_owner: dict[int, list[int]] = {}
    for j in index:
        by_owner.setdefault(int(cands.owner[j]), []).append(int(j))
    for i, js in by_owner.items():
        model += pulp.LpAffineExpression([(x[j], 1.0) for j in js]) == 1, f"one_price_{i}"
    if config.category_band is not None:
        for c, name in enumerate(np.unique(problem.category)):
            members = np.flatnonzero(problem.category == name)
            fixed = float((~in_model[members]).sum())  # SKUs kept at their price: index 1
            terms = [
                (x[j], float(cands.ratio[j])) for i in members for j in by_owner.get(int(i), [])
            ]
            if not terms:
                continue
            expression = pulp.LpAffineExpression(terms) + fixed
            model += expression <= members.size * (1 + config.category_band), f"band_hi_{c}"
            model += expression >= members.size * (1 - config.category_band), f"band_lo_{c}"
    build_seconds = time.perf_counter() - build_start

    chosen = np.full(problem.sku.size, -1)
    solve_start = time.perf_counter()
    solver_name = config.solver
    try:
        solver_name, solver = solver_for(config, relax)
        if x:
            model.solve(solver)
            status = pulp.LpStatus[model.status]
        else:
            status = "Optimal"
    except pulp.PulpSolverError as exc:
        status = f"error: {exc}"
    solve_seconds = time.perf_counter() - solve_start
    if status != "Optimal":
        return MilpResult(status, chosen, 0.0, False, solver_name, build_seconds, solve_seconds)
    values = {j: var.value() or 0.0 for j, var in x.items()}
    for i, js in by_owner.items():
        chosen[i] = max(js, key=lambda j: (values[j], -abs(cands.ratio[j] - 1)))
    objective = float(sum(cands.profit[j] * v for j, v in values.items()))
    proven = not x or getattr(model, "sol_status", 1) == pulp.LpSolutionOptimal
    return MilpResult(status, chosen, objective, proven, solver_name, build_seconds, solve_seconds)


def binding_constraints(
    problem: PricingProblem, cands: Candidates, chosen: np.ndarray, binding: np.ndarray
) -> np.ndarray:
    """Why each SKU did not get its most profitable ladder price: the rule that excludes that
    price, or category_band when only the band stopped it; none when it got it."""
    out = binding.copy()
    # the most profitable candidate of each SKU: first after sorting by SKU, then profit desc
    order = np.lexsort((-cands.profit, cands.owner))
    best = order[group_starts(cands.owner[order])]
    for i in np.flatnonzero(chosen >= 0):
        if cands.profit[chosen[i]] >= cands.profit[best[i]] - 1e-9:
            out[i] = "none"
        else:
            out[i] = cands.violation[best[i]] or "category_band"
    return out


def solution_frame_columns(
    problem: PricingProblem, cands: Candidates, solution: PricingSolution
) -> dict[str, np.ndarray]:
    """Per SKU: recommended price and expected units/revenue/profit, against current."""
    kept = solution.chosen < 0
    pick = np.where(kept, 0, solution.chosen)
    current_units = np.minimum(problem.base_units, problem.available)
    current_profit = (problem.current_price - problem.unit_cost) * current_units
    price = np.where(kept, problem.current_price, cands.price[pick])
    units = np.where(kept, current_units, cands.units[pick])
    profit = np.where(kept, current_profit, cands.profit[pick])
    return {
        "sku": problem.sku,
        "current_price": problem.current_price,
        "recommended_price": price,
        "unit_cost": problem.unit_cost,
        "elasticity": problem.elasticity,
        "expected_units": units,
        "expected_revenue": price * units,
        "expected_profit": profit,
        "current_expected_profit": current_profit,
        "profit_uplift": profit - current_profit,
        "binding_constraint": solution.binding,
    }


def keep_current_prices(solution: PricingSolution, reason: str) -> PricingSolution:
    """The same solution with every SKU at its current price (the gate failed, or the
    solver did): infeasible SKUs keep their reason, the rest get `reason`."""
    binding = np.where(
        np.char.startswith(solution.binding.astype(str), "infeasible"), solution.binding, reason
    ).astype(object)
    return replace(solution, chosen=np.full(solution.chosen.size, -1), binding=binding)


def current_price_admissible(problem: PricingProblem, config: PricingConfig) -> np.ndarray:
    """SKUs whose current price meets every per-SKU rule: the set the gate compares on."""
    cands = candidate_table(problem, config)
    at_current = np.isclose(cands.ratio, 1.0)
    ok = np.zeros(problem.sku.size, dtype=bool)
    ok[cands.owner[at_current & (cands.violation == "")]] = True
    return ok
