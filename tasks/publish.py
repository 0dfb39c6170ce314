"""Publish: copy tonight's marts into marts.duckdb atomically and export dated partitions.

The run builds `marts.duckdb.tmp` from scratch — tonight's tables, plus any published table
this run did not rebuild, carried over from the current file — and `os.replace`s it over
`marts.duckdb`. An analyst's open connection keeps reading the old file; a failed or killed
run leaves it untouched. Each dated mart is also written to
`exports/<table>/as_of=YYYY-MM-DD/part-0.parquet` (a rerun replaces that partition), and
`marts.duckdb` has a `<table>_history` view over all partitions. With
`NIGHTSHIFT_EXPORT_NIGHTS_KEPT` set, `prune_export_partitions` deletes the oldest nights.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import date
from pathlib import Path

import duckdb
from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift import tables
from nightshift.retention import beyond_newest
from nightshift.settings import Settings
from nightshift.warehouse import (
    copy_comments,
    open_warehouse,
    query_sql,
    quote_identifier,
    quote_literal,
    run_sql,
)
from tasks.retry import IO_RETRY


def export_partition(
    con: duckdb.DuckDBPyConnection, settings: Settings, table: str, as_of: date, run_id: str
) -> Path:
    """Write one dated mart to its as_of partition, replacing a previous one whole."""
    final = settings.exports_dir / table / f"as_of={as_of.isoformat()}"
    staging = final.with_name(f".{final.name}.{run_id}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    con.table(tables.MARTS[table].name).to_parquet(str(staging / "part-0.parquet"))
    retired = final.with_name(f".{final.name}.{run_id}.old")
    if final.exists():
        final.rename(retired)
    staging.rename(final)
    shutil.rmtree(retired, ignore_errors=True)
    return final


def create_history_view(con: duckdb.DuckDBPyConnection, table: str, glob: Path) -> None:
    """`published.<table>_history`: every exported partition of a dated mart, one view."""
    name = quote_identifier(table + "_history")
    con.execute(
        "create or replace view published." + name + " as select * from read_parquet("
        + quote_literal(glob.resolve().as_posix())
        + ", hive_partitioning = false, union_by_name = true)"
    )  # fmt: skip
    con.execute(
        "comment on view published." + name + " is "
        + quote_literal(f"Every night's {table}, from exports/{table}/as_of=*/ (one partition per as_of).")
    )  # fmt: skip


@task(name="publish", cache_policy=NO_CACHE, **IO_RETRY)
def publish_marts(
    settings: Settings,
    run_id: str,
    as_of: date,
    built: list[str],
    stale: dict[str, str] | None = None,
) -> list[str]:
    """Publish `built` marts (registry names) with the runs table; returns what was published.

    Tables this run did not build are carried over from the current file; those in `stale`
    (mart -> the branch that failed tonight) are flagged in their `model` column.
    Crash-safe: everything is written to `marts.duckdb.tmp` and moved into place in one
    `os.replace`, so readers see last night's file or tonight's, never a mix.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    final = settings.marts_path
    tmp = final.with_name(final.name + ".tmp")
    tmp.unlink(missing_ok=True)
    tonight = [*built, "runs"]
    with open_warehouse(settings) as con:
        run_sql(con, "marts/runs.sql")
        for table in built:
            if table in tables.DATED_MARTS:
                export_partition(con, settings, table, as_of, run_id)
        warehouse_db = query_sql(con, "schema/database_name.sql")[0][0]
        run_sql(con, "publish/attach_new.sql", {"path": str(tmp)})
        try:
            for table in tonight:
                schema, name = tables.MARTS[table].name.split(".")
                con.table(tables.MARTS[table].name).create("published.main." + table)
                copy_comments(con, (warehouse_db, schema, name), ("published", "main", table))
            carried = carry_over(con, final, set(tonight))
            for table in carried:
                if table in (stale or {}):
                    flag_stale(con, table, stale[table], as_of)
            for table in tables.DATED_MARTS:
                partitions = settings.exports_dir / table
                if any(partitions.glob("as_of=*/*.parquet")):
                    create_history_view(con, table, partitions / "as_of=*" / "*.parquet")
        finally:
            run_sql(con, "publish/detach_new.sql")
    os.replace(tmp, final)
    return sorted({*tonight, *carried})


def flag_stale(con: duckdb.DuckDBPyConnection, table: str, branch: str, as_of: date) -> None:
    """Prefix a carried-over table's `model` with why it is last night's (no-op without one)."""
    columns = set(con.table("published.main." + table).columns)
    if "model" not in columns:
        return
    con.execute(
        "update published.main." + quote_identifier(table)
        + " set model = 'stale (' || $branch || ' failed on ' || cast($as_of as varchar) "
        "|| '): ' || model",
        {"branch": branch, "as_of": as_of},
    )  # fmt: skip


def carry_over(con: duckdb.DuckDBPyConnection, final: Path, tonight: set[str]) -> list[str]:
    """Copy published tables this run did not rebuild from the current marts file."""
    if not final.exists():
        return []
    run_sql(con, "publish/attach_previous.sql", {"path": str(final)})
    try:
        previous = [name for (name,) in query_sql(con, "publish/previous_tables.sql")]
        carried = [name for name in previous if name in tables.MARTS and name not in tonight]
        for name in carried:
            con.table("previous.main." + name).create("published.main." + name)
            copy_comments(con, ("previous", "main", name), ("published", "main", name))
        return carried
    finally:
        run_sql(con, "publish/detach_previous.sql")


PARTITION_NAME = re.compile(r"as_of=(\d{4}-\d{2}-\d{2})")


@task(name="prune-export-partitions", cache_policy=NO_CACHE)
def prune_export_partitions(settings: Settings, tonight: date) -> dict[str, list[str]]:
    """Delete each dated table's export partitions beyond the newest
    `settings.export_nights_kept` nights, never tonight's; returns the deleted as_of dates per
    table. Every night adds a partition per table (about 170 MB on `large`, mostly
    recommendations) and the `_history` views read whatever remains, so the history an
    analyst can query is the kept nights. 0 (the default) keeps every night."""
    if settings.export_nights_kept <= 0:
        return {}
    pruned: dict[str, list[str]] = {}
    for table in tables.DATED_MARTS:
        folder = settings.exports_dir / table
        nights = {
            date.fromisoformat(found.group(1)): path
            for path in (folder.iterdir() if folder.is_dir() else [])
            if path.is_dir() and (found := PARTITION_NAME.fullmatch(path.name))
        }
        # tonight's is kept even when older than the rest: a backfill keeps what it wrote
        doomed = beyond_newest(nights, settings.export_nights_kept, {tonight})
        for night in doomed:
            shutil.rmtree(nights[night])
        if doomed:
            pruned[table] = [night.isoformat() for night in doomed]
    return pruned
