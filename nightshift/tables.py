"""The registry of every persisted table: its layer, qualified name and meaning.

IO code asks this module for names; nothing else spells a table name in Python. The SQL in
sql/ uses the same names, and tests check that each registered table exists after a run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    layer: str
    name: str  # schema.table in warehouse.duckdb, or the bare name in marts.duckdb
    description: str


# The raw layer is not a table: it is the Parquet archive under <home>/raw/ (tasks/ingest.py),
# listed by meta.loaded_files.archive_file.

# stg_* are views of the staged rows of judged_*, which hold every distinct raw row with its
# verdict; judging once and viewing the result saves a copy of the largest tables.
JUDGED = {
    t: Table("staging", f"staging.judged_{t}", f"Every distinct raw {t} row with its verdict.")
    for t in ("orders", "events", "products", "inventory")
}
STAGING = {
    "orders": Table("staging", "staging.stg_orders", "Clean, typed order lines; returns < 0."),
    "events": Table("staging", "staging.stg_events", "Clean click-stream events."),
    "products": Table("staging", "staging.stg_products", "Clean product catalogue."),
    "inventory": Table("staging", "staging.stg_inventory", "Clean inventory snapshots."),
}
DERIVED_PRODUCTS = Table(
    "staging", "staging.derived_products", "Products derived from order lines (no catalogue)."
)

QUARANTINE_ROWS = Table("quarantine", "quarantine.rows", "Rejected input rows with a reason.")
LOADED_FILES = Table("meta", "meta.loaded_files", "Which landing file was loaded, with digest.")
ROW_AUDIT = Table("meta", "meta.row_audit", "Per run and table: rows in = staged+quar.+dup.")
RUNS = Table("meta", "meta.runs", "One row per nightly run.")

FEATURES = {
    "fct_daily_demand": Table("features", "features.fct_daily_demand", "SKU x day demand."),
    "user_item_interactions": Table(
        "features", "features.user_item_interactions", "Weighted implicit feedback."
    ),
    "customer_rfm": Table("features", "features.customer_rfm", "Recency, frequency, monetary."),
    "dim_product": Table("features", "features.dim_product", "Products with cost and dates."),
    "dim_inventory": Table("features", "features.dim_inventory", "Stock position per SKU."),
}

# Published marts: built in the warehouse's `marts` schema, copied to marts.duckdb on publish.
# `dated` marts are exported per as_of to exports/<table>/as_of=YYYY-MM-DD/.
MARTS = {
    "kpi_daily": Table("marts", "marts.kpi_daily", "Daily shop KPIs."),
    "runs": Table("marts", "marts.runs", "One row per nightly run."),
    "recommendations": Table(
        "marts", "marts.recommendations", "Top products per customer, with score and source."
    ),
    "demand_forecast": Table(
        "marts", "marts.demand_forecast", "p10/p50/p90 units per active SKU, 28 days ahead."
    ),
    "inventory_plan": Table(
        "marts", "marts.inventory_plan", "What to order per product: safety stock, reorder point."
    ),
    "customer_segments": Table(
        "marts", "marts.customer_segments", "Each customer's segment, with RFM and PCA coordinates."
    ),
    "segment_profiles": Table(
        "marts", "marts.segment_profiles", "One row per customer segment: size and median profile."
    ),
    "model_quality": Table(
        "marts", "marts.model_quality", "Per night and branch: metrics vs baseline, gate result."
    ),
    "price_recommendations": Table(
        "marts", "marts.price_recommendations", "A profit-maximising price per active product."
    ),
}
DATED_MARTS = (
    "kpi_daily", "recommendations", "demand_forecast", "inventory_plan", "customer_segments",
    "segment_profiles", "price_recommendations", "model_quality",
)  # fmt: skip
