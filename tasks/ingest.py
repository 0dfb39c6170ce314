"""Ingest: landing files -> raw -> staging.stg_* and quarantine.rows, with row accounting.

Raw loads are incremental and keyed by file: a file already loaded with the same SHA-256 is
skipped, a file whose content changed replaces its rows (a corrected file), a new file is
appended. Staging is then rebuilt from all of raw, so it is a pure function of the files
loaded so far: reloading the same files changes no table. Everything happens in one DuckDB
transaction, so a bad file or a crash leaves the warehouse as it was.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift import contract, tables
from nightshift.errors import NightshiftError
from nightshift.runlog import progress_reporter, task_logger
from nightshift.settings import Settings
from nightshift.warehouse import open_warehouse, query_sql, quote_identifier, run_sql
from tasks.retry import IO_RETRY

LOAD_ORDER = ("products", "orders", "events", "inventory")


@dataclass(frozen=True)
class LandingFile:
    table: str
    path: Path
    source_file: str  # relative to the landing folder, e.g. orders/2024-01.csv
    digest: str


@dataclass
class IngestSummary:
    """What an ingest did: small enough to hand between tasks and print on the CLI."""

    run_id: str
    files_loaded: list[str] = field(default_factory=list)
    files_unchanged: int = 0
    audit: dict[str, dict[str, int]] = field(default_factory=dict)
    quarantined_by_reason: dict[str, dict[str, int]] = field(default_factory=dict)
    input_digests: dict[str, str] = field(default_factory=dict)
    defaults_used: list[str] = field(default_factory=list)
    orders_first_date: str | None = None
    orders_last_date: str | None = None
    customers: int = 0
    skus: int = 0


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, read in chunks so large files stay out of memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def discover_landing(landing_dir: Path) -> list[LandingFile]:
    """Every landing file of every contract table, in load order."""
    found = []
    for table in LOAD_ORDER:
        for path in contract.landing_files(landing_dir, table):
            found.append(
                LandingFile(
                    table=table,
                    path=path,
                    source_file=path.relative_to(landing_dir).as_posix(),
                    digest=file_digest(path),
                )
            )
    return found


def files_to_load(
    con: duckdb.DuckDBPyConnection, landing: list[LandingFile], full_refresh: bool
) -> list[LandingFile]:
    """New files and files whose content changed since they were loaded."""
    if full_refresh:
        return landing
    loaded = dict(query_sql(con, "raw/loaded_digests.sql"))
    return [f for f in landing if loaded.get(f.source_file) != f.digest]


def check_headers(landing: list[LandingFile]) -> None:
    """Apply the file-level contract rules to every file before anything is loaded."""
    for item in landing:
        contract.scan_checked(item.path, contract.CONTRACTS[item.table], item.source_file)


def load_raw_file(
    con: duckdb.DuckDBPyConnection, item: LandingFile, run_id: str, loaded_at: datetime
) -> int:
    """Replace one file's rows in raw with its current content; returns the rows loaded."""
    frame = contract.read_landing_file(item.path, contract.CONTRACTS[item.table], item.source_file)
    raw = frame.select(
        pl.lit(item.source_file).alias("source_file"),
        pl.col("source_row"),
        *[pl.col(name) for name in contract.CONTRACTS[item.table].column_names],
    )
    run_sql(con, "raw/forget_file.sql", {"source_file": item.source_file})
    con.from_arrow(raw.to_arrow()).insert_into(tables.RAW[item.table].name)
    run_sql(
        con,
        "raw/record_loaded_file.sql",
        {
            "source_table": item.table,
            "source_file": item.source_file,
            "digest": item.digest,
            "rows_loaded": frame.height,
            "load_id": run_id,
            "loaded_at": loaded_at,
        },
    )
    return frame.height


def rebuild_staging(con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str) -> bool:
    """Rebuild every stg_* table, quarantine.rows and this run's audit; True if a catalogue landed."""
    for (legacy,) in query_sql(con, "staging/legacy_staging_tables.sql"):
        con.execute("drop table staging." + quote_identifier(legacy))  # name from the catalog
    has_catalogue = bool(query_sql(con, "raw/has_catalogue.sql")[0][0])
    params = {
        "run_id": run_id,
        "catalogue_provided": has_catalogue,
        "non_product_pattern": settings.non_product_sku_pattern,
        "future_tolerance_hours": settings.future_tolerance_hours,
        "default_lead_time_days": settings.default_lead_time_days,
        "active_window_days": settings.active_window_days,
    }
    run_sql(con, "staging/stg_products.sql", params)
    run_sql(con, "staging/stg_orders.sql", params)
    if not has_catalogue:
        run_sql(con, "staging/stg_products_derived.sql", params)
    run_sql(con, "staging/stg_events.sql", params)
    run_sql(con, "staging/stg_inventory.sql", params)
    run_sql(con, "staging/row_accounts.sql", params)
    return has_catalogue


@task(name="ingest", cache_policy=NO_CACHE, **IO_RETRY)
def ingest_landing(settings: Settings, run_id: str, full_refresh: bool = False) -> IngestSummary:
    """Load new and corrected landing files and rebuild staging, all or nothing.

    Raises:
        ContractError: a landing file breaks a file-level rule; nothing was loaded.
        NightshiftError: no orders have been loaded (orders are the one required table).
    """
    landing = discover_landing(settings.landing_dir)
    summary = IngestSummary(run_id=run_id)
    with open_warehouse(settings) as con:
        pending = files_to_load(con, landing, full_refresh)
        check_headers(pending)
        loaded_at = datetime.now(UTC)
        con.execute("begin transaction")
        try:
            if full_refresh:
                run_sql(con, "raw/forget_everything.sql")
            report = progress_reporter(f"loading {len(pending)} landing files", len(pending))
            for done, item in enumerate(pending, start=1):
                rows = load_raw_file(con, item, run_id, loaded_at)
                task_logger(__name__).info("loaded %s: %d rows", item.source_file, rows)
                summary.files_loaded.append(item.source_file)
                report(done)
            has_catalogue = rebuild_staging(con, settings, run_id)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        summary.files_unchanged = len(landing) - len(pending)
        fill_summary(con, summary, has_catalogue)
    return summary


def fill_summary(
    con: duckdb.DuckDBPyConnection, summary: IngestSummary, has_catalogue: bool
) -> None:
    """Read the run's audit, quarantine reasons, input digests and order facts back."""
    for row in query_sql(con, "staging/audit_for_run.sql", {"run_id": summary.run_id}):
        table_name, rows_in, staged, quarantined, duplicate, new = row
        summary.audit[table_name] = {
            "rows_in": rows_in,
            "rows_staged": staged,
            "rows_quarantined": quarantined,
            "rows_duplicate": duplicate,
            "rows_new": new,
        }
    for table_name, reason, count in query_sql(con, "staging/quarantine_by_reason.sql"):
        summary.quarantined_by_reason.setdefault(table_name, {})[reason] = count
    summary.input_digests = dict(query_sql(con, "raw/input_digests.sql"))
    first, last, customers, skus = query_sql(con, "staging/orders_facts.sql")[0]
    if summary.audit.get("orders", {}).get("rows_in", 0) == 0:
        raise NightshiftError(
            "no orders loaded: put CSV or Parquet files in landing/orders/ "
            "(or run `nightshift generate`, or `nightshift ingest --source online-retail FILE`)"
        )
    summary.orders_first_date = str(first) if first else None
    summary.orders_last_date = str(last) if last else None
    summary.customers, summary.skus = customers, skus
    if not has_catalogue:
        summary.defaults_used.append("products: derived from order lines (no catalogue landed)")
    if summary.audit.get("events", {}).get("rows_in", 0) == 0:
        summary.defaults_used.append(
            "events: none landed; sessions, conversion, bounce, CTR are NULL"
        )
