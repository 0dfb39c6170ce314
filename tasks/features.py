"""Build the feature tables and KPI mart for one as_of from staging (DuckDB SQL in sql/)."""

from __future__ import annotations

from datetime import date

import duckdb
from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift.settings import Settings
from nightshift.warehouse import open_warehouse, query_sql, run_sql

FEATURE_FILES = (
    "features/fct_daily_demand.sql",
    "features/dim_product.sql",
    "features/dim_inventory.sql",
    "features/weighted_interactions.sql",
    "features/user_item_interactions.sql",
    "features/customer_rfm.sql",
)


def feature_params(settings: Settings, as_of: date) -> dict[str, object]:
    """The bind parameters every feature file may use."""
    return {
        "as_of": as_of,
        "default_cost_share": settings.default_cost_share,
        "default_cover_days": settings.default_cover_days,
        "default_lead_time_days": settings.default_lead_time_days,
        "weight_view": settings.interaction_weight_view,
        "weight_cart": settings.interaction_weight_cart,
        "weight_purchase": settings.interaction_weight_purchase,
        "half_life_days": settings.interaction_half_life_days,
    }


@task(name="features", cache_policy=NO_CACHE)
def build_features(settings: Settings, as_of: date) -> list[str]:
    """Rebuild every features.* table as of `as_of`; returns the defaults it had to apply."""
    with open_warehouse(settings) as con:
        con.execute("begin transaction")
        try:
            for path in FEATURE_FILES:
                run_sql(con, path, feature_params(settings, as_of))
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        return feature_defaults(con)


def feature_defaults(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The defaults recorded in the run: products with a default cost or stock position."""
    cost, inventory = query_sql(con, "features/defaults_used.sql")[0]
    used = []
    if cost:
        used.append(f"unit_cost: default share of list price for {cost} products")
    if inventory:
        used.append(f"inventory: default cover and lead time for {inventory} products")
    return used


@task(name="kpis", cache_policy=NO_CACHE)
def build_kpis(settings: Settings, as_of: date, run_id: str, mlflow_run_id: str | None) -> str:
    """Rebuild marts.kpi_daily for `as_of` with lineage; returns its registry name."""
    with open_warehouse(settings) as con:
        run_sql(
            con,
            "marts/kpi_daily.sql",
            {"as_of": as_of, "run_id": run_id, "mlflow_run_id": mlflow_run_id},
        )
    return "kpi_daily"
