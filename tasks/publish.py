"""Publish: copy tonight's marts into marts.duckdb atomically and export dated partitions.

The run builds `marts.duckdb.tmp` from scratch — tonight's tables, plus any published table
this run did not rebuild, carried over from the current file — and `os.replace`s it over
`marts.duckdb`. An analyst's open connection keeps reading the old file; a failed or killed
run leaves it untouched. Each dated mart is also written to
`exports/<table>/as_of=YYYY-MM-DD/part-0.parquet` (a rerun replaces that partition), and
`marts.duckdb` has a `<table>_history` view over all partitions. The partitions are
published data too, so they follow the marts: written hidden beside their place first,
moved in only after the `os.replace`, and what a run that died in between left is finished
or undone by the next publish (`settle_partitions`). With `NIGHTSHIFT_EXPORT_NIGHTS_KEPT`
set, `prune_export_partitions` deletes the oldest nights.
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
from nightshift.runlog import task_logger
from nightshift.settings import Settings
from nightshift.warehouse import (
    DamagedFileError,
    FileInUseError,
    connect_file,
    copy_comments,
    damage_explained,
    lock_conflicts_explained,
    open_warehouse,
    query_sql,
    quote_identifier,
    quote_literal,
    run_sql,
)
from tasks.retry import IO_RETRY

# A partition on its way in (`.as_of=D.<run_id>.tmp`) or out (`.as_of=D.<run_id>.old`): the
# leading dot keeps it out of the history views' glob and of Hive-style readers.
HIDDEN_PARTITION = re.compile(r"\.(as_of=\d{4}-\d{2}-\d{2})\.(.+)\.(tmp|old)")
# A zero-row file with a dated mart's columns, so that its history view can be created on its
# first night, before any partition is in place (DuckDB binds a view's glob when creating it).
COLUMNS_FILE = Path("_columns") / "part-0.parquet"
HISTORY_GLOB = Path("[!.]*") / "*.parquet"  # the partitions and the columns file, no hidden ones


def stage_partition(
    con: duckdb.DuckDBPyConnection, settings: Settings, table: str, as_of: date, run_id: str
) -> Path:
    """Write one dated mart's partition beside its place, hidden: `place_partition` moves it
    in once the marts are published."""
    folder = settings.exports_dir / table
    staged = folder / f".as_of={as_of.isoformat()}.{run_id}.tmp"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    relation = con.table(tables.MARTS[table].name)
    relation.to_parquet(str(staged / "part-0.parquet"))
    columns = folder / COLUMNS_FILE
    if not columns.exists():
        columns.parent.mkdir(exist_ok=True)
        relation.limit(0).to_parquet(str(columns))
    return staged


def place_partition(staged: Path) -> Path:
    """Move a staged partition into its place, replacing that night's previous one whole."""
    night, run_id, _ = HIDDEN_PARTITION.fullmatch(staged.name).groups()
    final = staged.with_name(night)
    retired = staged.with_name(f".{night}.{run_id}.old")
    if final.exists():
        shutil.rmtree(retired, ignore_errors=True)
        final.rename(retired)
    staged.rename(final)
    shutil.rmtree(retired, ignore_errors=True)
    return final


def settle_partitions(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, list[str]]:
    """Finish or undo the partitions a run left hidden when it died while publishing: moved
    into place when its marts were published (it died between the marts and the
    partitions), deleted when they were not. Returns {"placed"/"deleted": [paths]}.

    Safe because runs on a home take turns and every publish settles first: a run's
    staged partitions are still here only if no publish has committed since."""
    root = settings.exports_dir
    hidden = sorted(
        (path for path in root.glob("*/.as_of=*") if HIDDEN_PARTITION.fullmatch(path.name)),
        key=lambda path: path.name.endswith(".old"),  # partitions on their way in first
    )
    if not hidden:
        return {}
    runs = sorted({HIDDEN_PARTITION.fullmatch(path.name).group(2) for path in hidden})
    published: set[str] = set()
    if (previous := previous_marts(settings)) is not None:
        attach_previous(con, previous)
        try:
            published = {
                run for (run,) in query_sql(con, "publish/published_runs.sql", {"run_ids": runs})
            }
        finally:
            run_sql(con, "publish/detach_previous.sql")
    settled: dict[str, list[str]] = {"placed": [], "deleted": []}
    for path in hidden:
        if not path.exists():  # an .old that placing its partition already removed
            continue
        night, run_id, kind = HIDDEN_PARTITION.fullmatch(path.name).groups()
        relative = str(path.relative_to(root))
        if kind == "tmp" and run_id in published:
            place_partition(path)
            settled["placed"].append(relative)
        elif kind == "old" and not path.with_name(night).exists():
            path.rename(path.with_name(night))  # its replacement never arrived: put it back
            settled["placed"].append(relative)
        else:
            shutil.rmtree(path)
            settled["deleted"].append(relative)
    return settled


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
    staged: list[Path] = []
    try:
        with open_warehouse(settings) as con:
            settled = settle_partitions(con, settings)
            if settled:
                task_logger(__name__).warning("export partitions a failed run left: %s", settled)
            warehouse_db = query_sql(con, "schema/database_name.sql")[0][0]
            run_sql(con, "marts/runs.sql")
            copy_comments(con, (warehouse_db, "meta", "runs"), (warehouse_db, "marts", "runs"))
            for table in built:
                if table in tables.DATED_MARTS:
                    staged.append(stage_partition(con, settings, table, as_of, run_id))
            run_sql(con, "publish/attach_new.sql", {"path": str(tmp)})
            try:
                for table in tonight:
                    schema, name = tables.MARTS[table].name.split(".")
                    con.table(tables.MARTS[table].name).create("published.main." + table)
                    copy_comments(con, (warehouse_db, schema, name), ("published", "main", table))
                carried = carry_over(con, previous_marts(settings), set(tonight))
                for table in carried:
                    if table in (stale or {}):
                        flag_stale(con, table, stale[table], as_of)
                for table in tables.DATED_MARTS:
                    partitions = settings.exports_dir / table
                    if any(partitions.glob(str(HISTORY_GLOB))):
                        create_history_view(con, table, partitions / HISTORY_GLOB)
            finally:
                run_sql(con, "publish/detach_new.sql")
        identity = keep_own_copy(settings, tmp)
        os.replace(tmp, final)  # the commit: the marts, then their partitions
    except BaseException:
        discard_unpublished(settings, tmp, run_id)
        raise
    drop_other_copies(settings, identity)
    for partition in staged:
        try:
            place_partition(partition)
        except OSError as exc:  # the marts are published: the next publish places it
            task_logger(__name__).error(
                "%s stays hidden until the next publish: %s", partition, exc
            )
    return sorted({*tonight, *carried})


def discard_unpublished(settings: Settings, tmp: Path, run_id: str) -> None:
    """Delete what a publish that failed before its rename wrote: the new marts file (and its
    WAL), a partial own copy of it and the run's hidden partitions. The next publish would
    replace them, but a disk that filled up is the likeliest reason a publish fails, and on
    `large` the new marts alone are hundreds of MB. (A killed run cannot do this: the next
    publish does, `settle_partitions`.)"""
    for path in (tmp, tmp.with_name(tmp.name + ".wal")):
        path.unlink(missing_ok=True)
    for partial in settings.published_copy_dir.glob(".marts-*.duckdb.tmp"):
        partial.unlink(missing_ok=True)
    for table in tables.DATED_MARTS:
        for staged in (settings.exports_dir / table).glob(f".as_of=*.{run_id}.tmp"):
            shutil.rmtree(staged, ignore_errors=True)


def attach_previous(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Attach the published marts at `path` read-only, as `previous`."""
    with lock_conflicts_explained():
        run_sql(con, "publish/attach_previous.sql", {"path": str(path)})


def marts_identity(path: Path) -> str | None:
    """Which file `path` is (inode, size, modification time), or None when there is none.
    A rename keeps all three, so the built file and the published one share it."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return f"{stat.st_ino}-{stat.st_size}-{stat.st_mtime_ns}"


def previous_marts(settings: Settings) -> Path | None:
    """The published marts as a night reads them: its own copy while that is still the same
    file as marts.duckdb, else marts.duckdb itself; None before the first publish.

    An analyst who opens marts.duckdb for writing (DuckDB's CLI and `duckdb.connect` do by
    default) holds a lock that no other process can read past, and a session left open
    overnight failed the next night's publish. The copy is named after the file it copies,
    so one from a publish that died before its rename, or marts.duckdb restored from a
    backup, is never mistaken for the published file. A marts.duckdb damaged since (cut
    short, overwritten) failed every night's publish until someone replaced it: the last
    copy is read instead, and the night publishes a whole new file."""
    identity = marts_identity(settings.marts_path)
    if identity is None:
        return None
    copy = settings.published_copy_dir / f"marts-{identity}.duckdb"
    if copy.exists():
        return copy
    # not the file last published: restored from a backup (read it), or damaged since
    copies = list(settings.published_copy_dir.glob("marts-*.duckdb"))
    if not copies or (damage := damaged_duckdb_file(settings.marts_path)) is None:
        return settings.marts_path
    task_logger(__name__).warning(
        "%s; the tables not built tonight come from the night's own copy of the last publish",
        damage,
    )
    return max(copies, key=lambda path: path.stat().st_mtime_ns)  # the newest publish's


def damaged_duckdb_file(path: Path) -> DamagedFileError | None:
    """What is wrong with a DuckDB file that cannot be opened and its catalog read, or None
    (also when another program holds it: that is not damage)."""
    try:
        con = connect_file(path, read_only=True)
        try:
            with damage_explained(path):
                con.execute("select count(*) from duckdb_tables()").fetchall()
        finally:
            con.close()
    except DamagedFileError as exc:
        return exc
    except FileInUseError:
        return None
    return None


def keep_own_copy(settings: Settings, built: Path) -> str:
    """Copy the built marts into the night's own folder under its identity (returned),
    before it is renamed into place."""
    identity = marts_identity(built)
    folder = settings.published_copy_dir
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".marts-{identity}.duckdb.tmp"
    shutil.copyfile(built, partial)
    os.replace(partial, folder / f"marts-{identity}.duckdb")
    return identity


def drop_other_copies(settings: Settings, identity: str) -> None:
    """Delete the own copies of marts files that are no longer published."""
    for path in settings.published_copy_dir.glob("*marts-*"):
        if path.name != f"marts-{identity}.duckdb":
            path.unlink(missing_ok=True)


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


def carry_over(
    con: duckdb.DuckDBPyConnection, previous: Path | None, tonight: set[str]
) -> list[str]:
    """Copy published tables this run did not rebuild from the `previous` marts, if any."""
    if previous is None:
        return []
    attach_previous(con, previous)
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
