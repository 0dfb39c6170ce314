"""Build the feature tables and KPI mart for one as_of from staging (DuckDB SQL in sql/)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime

import duckdb
from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift.runlog import task_logger
from nightshift.settings import Settings
from nightshift.warehouse import open_warehouse, query_sql, run_sql, sql_digests
from tasks.ingest import staging_settings
from tasks.retry import IO_RETRY

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


def feature_build_key(settings: Settings, as_of: date, input_digests: Mapping[str, str]) -> str:
    """What the features are a function of: as_of, the landing files (their digests), the
    settings the staging and feature SQL bind, and that SQL's text (the code)."""
    parts = {
        "as_of": as_of.isoformat(),
        "inputs": dict(sorted(input_digests.items())),
        "params": {k: str(v) for k, v in feature_params(settings, as_of).items()},
        "staging": {k: str(v) for k, v in staging_settings(settings).items()},
        "timezone": settings.timezone,
        "sql": sql_digests("staging", "features"),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@task(name="features", cache_policy=NO_CACHE, **IO_RETRY)
def build_features(
    settings: Settings, as_of: date, input_digests: Mapping[str, str] | None = None
) -> list[str]:
    """Rebuild every features.* table as of `as_of`; returns the defaults it had to apply.

    Given the night's input digests, the build is skipped when the features already in the
    warehouse were built from the same key (a rerun on unchanged data). The key is checked
    against the warehouse itself, not a Prefect result cache: the tables are shared state
    that another night (say a backfill of a different as_of) may have rebuilt since.
    """
    key = feature_build_key(settings, as_of, input_digests) if input_digests else None
    with open_warehouse(settings) as con:
        built = query_sql(con, "meta/feature_build.sql")
        if key is not None and built and built[0][0] == key:
            task_logger(__name__).info(
                "features: inputs, settings and SQL unchanged since the last build; skipped"
            )
            return list(built[0][1] or [])
        con.execute("begin transaction")
        try:
            for path in FEATURE_FILES:
                run_sql(con, path, feature_params(settings, as_of))
            defaults = feature_defaults(con)
            run_sql(
                con,
                "meta/record_feature_build.sql",
                {
                    "build_key": key or "",
                    "as_of": as_of,
                    "built_at": datetime.now(UTC),
                    "defaults_used": defaults,
                },
            )
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        return defaults


def feature_defaults(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The defaults recorded in the run: products with a default cost or stock position.
    Each entry starts with what was defaulted ('inventory:'): the HTML report keys on it."""
    cost, inventory = query_sql(con, "features/defaults_used.sql")[0]
    used = []
    if cost:
        used.append(f"unit_cost: default share of list price for {cost} products")
    if inventory:
        used.append(f"inventory: default cover and lead time for {inventory} products")
    return used


@task(name="kpis", cache_policy=NO_CACHE, **IO_RETRY)
def build_kpis(settings: Settings, as_of: date, run_id: str, mlflow_run_id: str | None) -> str:
    """Rebuild marts.kpi_daily for `as_of` with lineage; returns its registry name."""
    with open_warehouse(settings) as con:
        run_sql(
            con,
            "marts/kpi_daily.sql",
            {"as_of": as_of, "run_id": run_id, "mlflow_run_id": mlflow_run_id},
        )
    return "kpi_daily"
