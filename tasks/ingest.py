"""Ingest: landing files -> the raw archive -> staging.stg_* and quarantine.rows, with row
accounting.

The raw layer is an archive of Parquet files under `<home>/raw/`, one per loaded landing
file: its rows exactly as they arrived, as text, with `source_file` and `source_row`. It is
not a DuckDB table because writing every row as text into DuckDB cost more than the whole
peer load in bench/ingest.py, and the archive is written once, by Polars, in a third of that.
An archive file is named by the landing file and its SHA-256, so it is never rewritten in
place; `meta.loaded_files.archive_file` says which ones are current.

Loads are incremental and keyed by file: a file already loaded with the same SHA-256 is
skipped, a file whose content changed replaces its rows (a corrected file; an orders file
must keep some of its order keys, or it is another day's export under the same name), a
new file is appended. A loaded file that leaves landing/ keeps its rows; only `forget`
takes them out. Staging is a pure function of the files loaded so far: reloading the same files
changes no table. How much is judged again follows what changed since staging was last
judged (`meta.staging_build`):
- nothing, when the files, the staging settings, the timezone and the staging SQL are the
  same (a retry, a backfill night or a retrain on unchanged data only writes its own row
  accounting);
- the changed files' orders and events (an increment), when files were added, corrected or
  archived again and no catalogue changed: a night judges a day's files, not the history.
  Every verdict a changed file's rows (or the versions they replace) could change is taken
  out and judged again with every copy of its row, and key conflicts are ranked over every
  line, so the verdicts are the ones a full build gives (tests/unit/test_ingest.py);
- everything otherwise (a new catalogue, a changed setting or SQL, --full-refresh).
The warehouse changes in one DuckDB transaction, so a bad file or a crash leaves it as it
was (at worst with archive files no row points to, which the next ingest deletes).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift import contract
from nightshift.contract import Unparsed
from nightshift.errors import ContractError, NightshiftError
from nightshift.files import gzip_damage_named, written_atomically
from nightshift.runlog import progress_reporter, task_logger
from nightshift.settings import Settings
from nightshift.warehouse import (
    loaded_archive_files,
    loaded_files_in,
    open_warehouse,
    query_frame,
    query_sql,
    quote_identifier,
    registered_frames,
    run_sql,
    sql_digests,
    table_exists,
)
from tasks.retry import IO_RETRY

# meta.row_audit's counts, in the order the ingest log names them
AUDIT_COUNTS = ("rows_in", "rows_staged", "rows_quarantined", "rows_duplicate")

LOAD_ORDER = ("products", "orders", "events", "inventory")


@dataclass(frozen=True)
class LandingFile:
    table: str
    path: Path
    source_file: str  # relative to the landing folder, e.g. orders/2024-01.csv
    digest: str
    # (size, modification time in ns) before the digest: what the file was when read
    signature: tuple[int, int] | None = None


class FileChangedWhileRead(Exception):
    """A landing file was written to while ingest read it: an upload still in progress."""


def file_signature(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def require_unchanged(item: LandingFile) -> None:
    """Raise `FileChangedWhileRead` if the file is no longer what was digested and read.

    An export job or an upload that writes the file under its final name while the night
    reads it would leave an archive copy of part of the file, under the digest of another
    part. Such a file is left for the next ingest instead (`ingest_landing`)."""
    if item.signature is not None and file_signature(item.path) != item.signature:
        raise FileChangedWhileRead(item.source_file)


@contextmanager
def blamed_only_if_unchanged(item: LandingFile) -> Iterator[None]:
    """A file-level rule the file broke while it changed is the writer's doing (an upload
    caught mid-way reads as cut short, or as a header without its columns): raise
    `FileChangedWhileRead`, so that it waits for the next ingest rather than fails the night.
    A file that did not change keeps its `ContractError`."""
    try:
        yield
    except ContractError:
        require_unchanged(item)
        raise


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
    staging_judged: str = "all files"  # or "changed files" (an increment) or "nothing"
    files_not_read: dict[str, str] = field(default_factory=dict)  # landing path -> why
    files_forgotten: list[str] = field(default_factory=list)  # taken out by --forget
    files_only_archived: list[str] = field(default_factory=list)  # loaded, gone from landing


CHANGED_WHILE_READ = (
    "it changed while it was read (an upload or export still writing it?); its rows wait "
    "for the next ingest. Write files under a hidden name (.name) and rename them when done"
)


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, read in chunks so large files stay out of memory."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def discover_landing(landing_dir: Path) -> list[LandingFile]:
    """Every landing file of every contract table, in load order.

    Files are digested on a few threads: hashlib releases the GIL while it hashes, and
    digesting every landing file is the whole cost of a rerun on unchanged data."""
    paths = [
        (table, path) for table in LOAD_ORDER for path in contract.landing_files(landing_dir, table)
    ]
    signatures = [file_signature(path) for _, path in paths]  # before reading a byte
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        digests = list(pool.map(file_digest, [path for _, path in paths]))
    return [
        LandingFile(
            table=table,
            path=path,
            source_file=path.relative_to(landing_dir).as_posix(),
            digest=digest,
            signature=signature,
        )
        for (table, path), digest, signature in zip(paths, digests, signatures, strict=True)
    ]


def settled_files(
    landing: list[LandingFile], settle_seconds: float
) -> tuple[list[LandingFile], dict[str, str]]:
    """The landing files modified at least `settle_seconds` ago, and why each other one
    waits (by landing path): an upload that stalls mid-file is not seen changing while it
    is read (`require_unchanged`), only by its age."""
    if settle_seconds <= 0:
        return landing, {}
    now = time.time()
    settled, waiting = [], {}
    for item in landing:
        age = now - item.signature[1] / 1e9 if item.signature else settle_seconds
        if age >= settle_seconds:
            settled.append(item)
        else:
            waiting[item.source_file] = (
                f"modified {max(age, 0):.0f} s ago, under NIGHTSHIFT_LANDING_SETTLE_SECONDS "
                f"({settle_seconds:g}): it waits for the next ingest"
            )
    return settled, waiting


def files_to_load(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    landing: list[LandingFile],
    full_refresh: bool,
) -> list[LandingFile]:
    """New files, files whose content changed since they were loaded, and files whose
    archive copy is missing (it is written again from the landing file)."""
    if full_refresh:
        return landing
    loaded = {
        source_file: (digest, archive_file)
        for source_file, digest, archive_file, _ in query_sql(con, "raw/loaded_digests.sql")
    }

    def current(item: LandingFile) -> bool:
        digest, archive_file = loaded.get(item.source_file, (None, None))
        return (
            digest == item.digest
            and archive_file is not None
            and (settings.home / archive_file).exists()
        )

    return [item for item in landing if not current(item)]


def files_to_forget(
    con: duckdb.DuckDBPyConnection, landing: list[LandingFile], forget: Sequence[str]
) -> list[str]:
    """The loaded files that `forget` names, each a name or a glob pattern such as
    `orders/synthetic_*` (a synthetic shop generated into a real home is fifty files).

    Refuses a name or pattern that matches no loaded file (a typo would otherwise do
    nothing), and a file still in landing/, which the same ingest would load straight back.

    Raises:
        NightshiftError: naming the file or pattern and what to do.
    """
    loaded = loaded_files_in(con)
    in_landing = {item.source_file for item in landing}
    chosen: list[str] = []
    for pattern in forget:
        matched = fnmatch.filter(loaded, pattern)
        if not matched:
            example = loaded[0] if loaded else "orders/2024-01.csv"
            raise NightshiftError(
                f"cannot forget {pattern}: it is not a loaded file (name it as "
                f"meta.loaded_files.source_file does, relative to landing/, e.g. {example}; "
                "a glob such as orders/2024-* names several)"
            )
        if still := [name for name in matched if name in in_landing]:
            raise NightshiftError(
                f"cannot forget {still[0]}: landing/{still[0]} is still there and would be "
                "loaded again; move it out of landing/ first"
            )
        chosen.extend(name for name in matched if name not in chosen)
    return chosen


def only_archived(con: duckdb.DuckDBPyConnection, landing: list[LandingFile]) -> list[str]:
    """Loaded files no longer in landing/: their rows stay, read from the raw archive. A
    shop may clear its landing folder once files are loaded; that must not lose history."""
    in_landing = {item.source_file for item in landing}
    return [source_file for source_file in loaded_files_in(con) if source_file not in in_landing]


def check_order_keys_kept(
    con: duckdb.DuckDBPyConnection, settings: Settings, item: LandingFile, old_archive: str | None
) -> None:
    """The `keeps_its_keys` rule: a changed orders file is a correction of the version it
    replaces (archived as `old_archive`; None for a new file) only if it still holds some of
    its order keys. A file archived again under its old content replaces nothing.

    An export job that writes each day's orders over yesterday's file under the same name
    looks to ingest like a correction, and replacing would drop every line of the old
    version, archive included, a day of history a night. Renaming the new file keeps them:
    a loaded file that leaves landing/ keeps its rows.

    Raises:
        ContractError: the new version holds none of the old version's order keys.
    """
    if (
        item.table != "orders"
        or old_archive is None
        or old_archive == archive_file_for(item)
        or not (settings.home / old_archive).exists()
    ):
        return
    old_keys, kept = query_sql(
        con,
        "raw/order_keys_kept.sql",
        {
            "old_archive_file": str(settings.home / old_archive),
            "new_archive_file": str(settings.home / archive_file_for(item)),
        },
    )[0]
    if old_keys and not kept:
        raise ContractError(
            item.source_file,
            "keeps_its_keys",
            f"the file changed, and none of the {old_keys:,} order keys loaded from it before "
            "is in the new version, so replacing it would drop those lines. A new export "
            "under the same name? Give it its own name (e.g. with the date): the old name's "
            "lines stay, from the raw archive. Meant to drop them? Move the file out of "
            f"landing/, run `nightshift ingest --forget {item.source_file}`, then put it back",
        )


def check_headers(landing: list[LandingFile]) -> list[LandingFile]:
    """Apply the file-level contract rules to every file before anything is loaded, and log
    the columns each file has beyond the contract's: they are ignored, and a renamed
    optional column (channel sent as sales_channel) shows there rather than as nulls.

    Returns the files that broke a rule while they changed: an upload caught in its first
    bytes, which waits for the next ingest rather than fails the night.
    """
    changing: list[LandingFile] = []
    for item in landing:
        try:
            with blamed_only_if_unchanged(item):
                _, schema, mapping = contract.scan_checked(
                    item.path, contract.CONTRACTS[item.table], item.source_file
                )
        except FileChangedWhileRead:
            changing.append(item)
            continue
        if extra := [name for name in schema.names() if name not in mapping.values()]:
            task_logger(__name__).info(
                "%s: columns not in the contract, ignored: %s", item.source_file, ", ".join(extra)
            )
    return changing


def raw_columns(table: str) -> list[str]:
    """The raw archive's columns: where a row came from, then the contract's, all text."""
    return ["source_file", "source_row", *contract.CONTRACTS[table].column_names]


def archive_file_name(source_file: str, digest: str) -> str:
    """Where a landing file's archive copy lives, relative to the home: named by the file
    and its content, so a corrected file gets a new archive file beside the old one."""
    return f"raw/{source_file}.{digest[:16]}.parquet"


def archive_file_for(item: LandingFile) -> str:
    """Where this landing file's archive copy lives (archive_file_name)."""
    return archive_file_name(item.source_file, item.digest)


def write_parquet_atomically(rows: pl.DataFrame | pl.LazyFrame, path: Path) -> None:
    """Write a Parquet file atomically (written_atomically). A lazy frame is streamed: a
    landing file is never held in memory whole."""
    # lz4, no statistics: the archive is written once and scanned whole; this is the
    # cheapest layout to write (bench/ingest.py) and a third of the text's size
    with written_atomically(path) as partial:
        if isinstance(rows, pl.LazyFrame):
            rows.sink_parquet(partial, compression="lz4", statistics=False)
        else:
            rows.write_parquet(partial, compression="lz4", statistics=False)


def with_source_file(
    rows: pl.LazyFrame | pl.DataFrame, table: str, source_file: str
) -> pl.LazyFrame | pl.DataFrame:
    """A landing file's rows as the archive holds them: the file they came from, then the
    row number and the contract's columns."""
    return rows.select(pl.lit(source_file).alias("source_file"), *raw_columns(table)[1:])


def write_batches_atomically(batches: Iterator[pl.DataFrame], path: Path, empty_like: Path) -> None:
    """Write frames one after another into one Parquet file, atomically, in the archive's
    layout (write_parquet_atomically): the tolerant CSV reader's batches never sit in memory
    together. A file with no row gets the columns of `empty_like`."""
    import pyarrow.parquet as pq

    with written_atomically(path) as partial:
        writer = None
        try:
            for batch in batches:
                table = batch.to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(
                        partial, table.schema, compression="lz4", write_statistics=False
                    )
                writer.write_table(table.cast(writer.schema))
            if writer is None:
                shutil.copyfile(empty_like, partial)
        finally:
            if writer is not None:
                writer.close()


def unparsed_frame(unparsed: list[Unparsed]) -> pl.DataFrame:
    """The unparsed records of a file, as raw/record_unparsed_rows.sql reads them."""
    schema = {"source_row": pl.Int64, "reason": pl.String, "detail": pl.String, "text": pl.String}
    return pl.DataFrame([asdict(u) for u in unparsed], schema=schema)


def parquet_rows(path: Path) -> int:
    """Rows in a Parquet file, from its footer."""
    return pl.scan_parquet(path, glob=False).select(pl.len()).collect().item()


def empty_archive_file(settings: Settings, table: str) -> Path:
    """A zero-row archive file with the table's raw columns, read with the real ones so that
    a table with no files yet reads as empty (read_parquet refuses an empty list)."""
    path = settings.raw_archive_dir / table / "_empty.parquet"
    if not path.exists():
        empty = pl.DataFrame(
            schema={c: pl.Int64 if c == "source_row" else pl.String for c in raw_columns(table)}
        )
        write_parquet_atomically(empty, path)
    return path


def write_archive_file(settings: Settings, item: LandingFile, archive_path: Path) -> list[Unparsed]:
    """Write one landing file's rows as they arrived to its archive file; returns the records
    that are not rows.

    A CSV file that Polars refuses is read again record by record: its rows are archived as
    usual and the records that are not rows are returned, to be quarantined.
    """
    table_contract = contract.CONTRACTS[item.table]
    rows = contract.landing_rows(item.path, table_contract, item.source_file)
    try:
        with contract.parse_errors_named(item.source_file):
            write_parquet_atomically(
                with_source_file(rows, item.table, item.source_file), archive_path
            )
        return []
    except ContractError:
        if contract.landing_format(item.path) != "csv":
            raise
    # a record Polars cannot parse fails the whole file there: read it record by record and
    # keep the records that are not rows for the quarantine
    task_logger(__name__).warning(
        "%s: the fast CSV reader refused the file; reading it record by record", item.source_file
    )
    unparsed: list[Unparsed] = []

    def rows_keeping_unparsed() -> Iterator[pl.DataFrame]:
        for batch in contract.read_csv_tolerantly(item.path, table_contract, item.source_file):
            unparsed.extend(batch.unparsed)
            yield with_source_file(batch.rows, item.table, item.source_file)

    write_batches_atomically(
        rows_keeping_unparsed(), archive_path, empty_archive_file(settings, item.table)
    )
    return unparsed


def archive_raw_file(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    item: LandingFile,
    run_id: str,
    loaded_at: datetime,
) -> int:
    """Archive one landing file's rows as they arrived and record it as the file's current
    content, replacing an earlier version; returns the rows loaded (and records quarantined
    as unparsed: `write_archive_file`).

    Raises:
        ContractError: the file cannot be parsed (a gzip file cut short among them), or has a
            header but no data rows.
        FileChangedWhileRead: the file changed while it was read, a parse failure included.
    """
    archive_file = archive_file_for(item)
    archive_path = settings.home / archive_file
    with blamed_only_if_unchanged(item), gzip_damage_named(item.path, item.source_file):
        unparsed = write_archive_file(settings, item, archive_path)
    try:
        require_unchanged(item)  # before the version it replaces is forgotten
    except FileChangedWhileRead:
        archive_path.unlink(missing_ok=True)
        raise
    rows_loaded = parquet_rows(archive_path) + len(unparsed)
    if rows_loaded == 0:
        archive_path.unlink()
    contract.require_rows(rows_loaded, item.source_file)
    run_sql(con, "raw/forget_file.sql", {"source_file": item.source_file})
    if unparsed:
        task_logger(__name__).warning(
            "%s: %d record(s) could not be parsed and are quarantined (first: %s)",
            item.source_file,
            len(unparsed),
            unparsed[0].detail,
        )
        with registered_frames(con, {"unparsed_rows_frame": unparsed_frame(unparsed)}):
            run_sql(
                con,
                "raw/record_unparsed_rows.sql",
                {"source_table": item.table, "source_file": item.source_file},
            )
    run_sql(
        con,
        "raw/record_loaded_file.sql",
        {
            "source_table": item.table,
            "source_file": item.source_file,
            "digest": item.digest,
            "rows_loaded": rows_loaded,
            "load_id": run_id,
            "loaded_at": loaded_at,
            "archive_file": archive_file,
        },
    )
    return rows_loaded


def archived_files(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, list[str]]:
    """Per contract table, the archive files staging reads: every loaded file's, or the
    empty one for a table with none.

    The empty file is never listed beside real ones: DuckDB estimates a file list's rows
    from its first file, and an empty first file made it plan the events judgement's joins
    the wrong way round (3.5x slower on `medium`).

    Raises:
        NightshiftError: a loaded file's archive copy is gone and its landing file with it,
            so its rows cannot be staged.
    """
    files: dict[str, list[str]] = {table: [] for table in LOAD_ORDER}
    for table, source_file, archive_file in query_sql(con, "raw/archive_files.sql"):
        path = settings.home / archive_file if archive_file else None
        if path is None or not path.exists():
            raise NightshiftError(
                f"the raw archive of {source_file} is missing ({path}) and the file is no "
                "longer in landing/: restore either, or take its rows out with "
                f"`nightshift ingest --forget {source_file}`"
            )
        files[table].append(str(path))
    return {
        table: paths or [str(empty_archive_file(settings, table))] for table, paths in files.items()
    }


def move_legacy_raw_tables(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Move the rows of a warehouse built before the Parquet archive (raw.* tables of text)
    into archive files, then drop the tables: nothing that was loaded is lost."""
    for (table,) in query_sql(con, "raw/legacy_raw_tables.sql"):
        name = "raw." + quote_identifier(table)  # a name read from the catalog
        unarchived = query_sql(con, "raw/unarchived_files.sql", {"source_table": table})
        for source_file, digest in unarchived:
            frame = con.sql(
                f"select * from {name} where source_file = $f order by source_row",  # noqa: S608
                params={"f": source_file},
            ).pl()
            archive_file = archive_file_for(
                LandingFile(table, Path(source_file), source_file, digest)
            )
            write_parquet_atomically(frame.select(raw_columns(table)), settings.home / archive_file)
            run_sql(
                con,
                "raw/set_archive_file.sql",
                {"source_file": source_file, "archive_file": archive_file},
            )
        con.execute("drop table " + name)


# meta tables written beside the raw archive after each committed ingest, as
# raw/<table>.parquet, from sql/raw/manifest_<table>.sql
ARCHIVE_MANIFEST = ("loaded_files", "unparsed_rows", "retired_products")


def write_archive_manifest(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Write which landing files the archive holds (and their unparsed records and the
    products no catalogue lists any more) beside it.

    The archive's file names carry a short digest, and the unparsed records live only in
    the warehouse, so without this a warehouse that is lost or damaged took the record of
    every loaded file with it: a new one reloaded landing/ and pruned the archive copies of
    the files gone from there, their rows with them. Written after the commit and before
    the prune, so that every archive file a manifest names is there."""
    for table in ARCHIVE_MANIFEST:
        frame = query_frame(con, f"raw/manifest_{table}.sql")
        with written_atomically(settings.raw_archive_dir / f"{table}.parquet") as partial:
            frame.write_parquet(partial)


def adopt_archive_manifest(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    """In a warehouse that has loaded no file, record the loaded files the archive's
    manifest lists whose archive copy is there, as the lost warehouse had them; returns them.

    Landing files with the digests they had are then skipped as before, files gone from
    landing/ keep their rows, and staging is judged again from the archive."""
    manifest = {table: settings.raw_archive_dir / f"{table}.parquet" for table in ARCHIVE_MANIFEST}
    if loaded_files_in(con) or not manifest["loaded_files"].exists():
        return []
    listed = pl.read_parquet(manifest["loaded_files"])
    present = listed.filter(
        pl.Series(
            [(settings.home / name).is_file() for name in listed["archive_file"]], dtype=pl.Boolean
        )
    )
    frames = {
        # a manifest older than one of its tables: the new warehouse's, with no rows
        f"manifest_{table}": pl.read_parquet(path)
        if path.exists()
        else query_frame(con, f"raw/manifest_{table}.sql")
        for table, path in manifest.items()
        if table != "loaded_files"
    }
    frames["manifest_loaded_files"] = present
    with registered_frames(con, frames):
        run_sql(con, "raw/adopt_manifest.sql")
    if missing := sorted(set(listed["source_file"]) - set(present["source_file"])):
        task_logger(__name__).warning(
            "the raw archive's manifest lists %d file(s) whose archive copy is gone (%s): "
            "they load again from landing/ if they are there",
            len(missing),
            contract.names_shown(missing),
        )
    return present["source_file"].to_list()


def adopt_published_runs(con: duckdb.DuckDBPyConnection, settings: Settings) -> int:
    """In a warehouse built again from the raw archive, take back the run history that the
    last publish holds (its `runs` table: the lost warehouse's finished runs up to then);
    returns how many runs. The published table used to start afresh with the rebuild.

    The history is a record, not data a night needs: a published file that cannot be read
    is logged and the rebuild goes on without it."""
    from tasks.publish import attach_previous, previous_marts

    previous = previous_marts(settings)
    if previous is None:
        return 0
    ((before,),) = query_sql(con, "meta/run_count.sql")
    try:
        attach_previous(con, previous)
        try:
            run_sql(con, "meta/adopt_published_runs.sql")
        finally:
            run_sql(con, "publish/detach_previous.sql")
    except (NightshiftError, duckdb.Error) as exc:
        task_logger(__name__).warning("could not take back the published run history: %s", exc)
        return 0
    ((after,),) = query_sql(con, "meta/run_count.sql")
    return after - before


def prune_archive(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Delete archive files that no loaded file points to any more: replaced versions of
    corrected files, and files written by an ingest that failed before it committed."""
    current = {archive_file for _, _, archive_file in query_sql(con, "raw/archive_files.sql")}
    for path in settings.raw_archive_dir.glob("*/*"):
        relative = path.relative_to(settings.home).as_posix()
        if path.name != "_empty.parquet" and relative not in current:
            path.unlink()


def staging_settings(settings: Settings) -> dict[str, object]:
    """The settings the staging SQL binds: with the loaded files, what the verdicts depend on."""
    return {
        "non_product_pattern": settings.non_product_sku_pattern,
        "future_tolerance_hours": settings.future_tolerance_hours,
        "default_lead_time_days": settings.default_lead_time_days,
        "active_window_days": settings.active_window_days,
    }


@dataclass(frozen=True)
class StagingBuild:
    """What staging is a pure function of: the settings the staging SQL binds, the shop
    timezone (business dates) and that SQL's text (`settings_key`), and the loaded files by
    content (`files`, source_file -> SHA-256)."""

    settings_key: str
    files: dict[str, str]

    @property
    def key(self) -> str:
        parts = {"settings": self.settings_key, "files": dict(sorted(self.files.items()))}
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def staging_settings_key(settings: Settings) -> str:
    """The part of a staging build that is not the files: a change judges every file again."""
    parts = {
        "settings": {k: str(v) for k, v in staging_settings(settings).items()},
        "timezone": settings.timezone,
        "sql": sql_digests("schema", "staging"),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def last_staging_build(con: duckdb.DuckDBPyConnection) -> tuple[str, StagingBuild | None]:
    """The key staging was last judged from, and the build itself when it was recorded with
    its files (warehouses from before incremental judging have only the key)."""
    built = query_sql(con, "meta/staging_build.sql")
    if not built:
        return "", None
    key, settings_key, files = built[0]
    if settings_key is None or files is None:
        return key, None
    return key, StagingBuild(settings_key, json.loads(files))


@dataclass(frozen=True)
class ChangedFiles:
    """One table's files whose rows changed since the last staging build."""

    archive_files: list[str]  # current archive files judged again, relative to the home
    replaced: list[str]  # archive files of the versions they replace


def changed_archive_files(
    previous: StagingBuild | None,
    current: StagingBuild,
    reloaded: set[str],
    tables: dict[str, str],
) -> dict[str, ChangedFiles] | None:
    """Per table, the files whose rows changed since the build staging holds, or None when
    every row must be judged.

    A file changed when it was added, corrected (then the version it replaces changed too)
    or archived again under its old content (its rows come in with a new load). An
    increment is exact only on top of a build judged with the same settings and SQL, and
    when no catalogue changed: products decide `unknown_sku` for every line and event.

    Args:
        previous: the build staging holds; None when unknown.
        current: the build the loaded files make now.
        reloaded: source files this ingest archived.
        tables: contract table of every loaded source file.
    """
    if previous is None or previous.settings_key != current.settings_key:
        return None
    arrived = sorted(
        {name for name, digest in current.files.items() if previous.files.get(name) != digest}
        | reloaded
    )
    replaced = {
        name: digest for name, digest in previous.files.items() if current.files.get(name) != digest
    }
    if any(tables.get(name) in (None, "products") for name in [*arrived, *replaced]):
        return None
    return {
        table: ChangedFiles(
            archive_files=[
                archive_file_name(name, current.files[name])
                for name in arrived
                if tables[name] == table
            ],
            replaced=[
                archive_file_name(name, digest)
                for name, digest in sorted(replaced.items())
                if tables[name] == table
            ],
        )
        for table in sorted({tables[name] for name in [*arrived, *replaced]})
    }


def judge_table(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    table: str,
    params: dict[str, object],
    changed: ChangedFiles | None,
) -> None:
    """Judge a table's archived rows into staging.judged_<table>: all of them (`changed`
    None), or on an increment the changed files' rows and every copy elsewhere of a row
    whose hash a changed or replaced file holds, after taking those verdicts out."""
    placeholder = [str(empty_archive_file(settings, table))]
    every_file = params[f"raw_{table}_files"]
    if changed is None:
        run_sql(con, f"staging/judged_{table}_table.sql")
        batch_files, hash_files, unchanged_files = every_file, placeholder, placeholder
    else:
        batch_files = [str(settings.home / f) for f in changed.archive_files] or placeholder
        hash_files = batch_files + [str(settings.home / f) for f in changed.replaced]
        # listed, not filtered by source_file: a per-row filter made the scan 3x slower
        judged_again = set(batch_files)
        unchanged_files = [f for f in every_file if f not in judged_again] or placeholder
    batch = {
        **params,
        "judge_every_row": changed is None,
        f"batch_{table}_files": batch_files,
        f"changed_{table}_files": hash_files,
        f"unchanged_{table}_files": unchanged_files,
    }
    run_sql(con, f"staging/take_back_{table}.sql", batch)
    run_sql(con, f"staging/stg_{table}.sql", batch)


def judge_staging(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    run_id: str,
    has_catalogue: bool,
    reloaded: set[str],
    full: bool,
    retire_products: bool = True,
) -> str:
    """Judge what changed since staging was last judged; returns what was judged: "all
    files", "changed files" (an increment) or "nothing" (a retry, a backfill night or a
    retrain on unchanged data, whose verdicts would be the same).

    A night that adds or corrects a day's files judges those files' orders and events, not
    the whole history: judging every file is most of an ingest on `medium` and grows with
    it (bench/RESULTS.md). Products and inventory are small and judged whole every time. A
    lost archive file is named either way: staging may still hold its rows, but a full
    build could not judge them again. Products the catalogue no longer lists are retired
    (meta.retired_products), unless `retire_products` is off (a catalogue was forgotten)."""
    archive = archived_files(con, settings)
    loaded = query_sql(con, "raw/loaded_digests.sql")
    tables = {source_file: table for source_file, _, _, table in loaded}
    current = StagingBuild(
        staging_settings_key(settings),
        {source_file: digest for source_file, digest, _, _ in loaded},
    )
    key, previous = last_staging_build(con)
    # a file archived again under its old content has a new load: its rows are judged again
    if not full and not reloaded and key == current.key:
        task_logger(__name__).info(
            "staging: files, settings and SQL unchanged since the last ingest; not judged again"
        )
        return "nothing"
    changed = None if full else changed_archive_files(previous, current, reloaded, tables)
    if changed and any(
        not (settings.home / f).exists() for c in changed.values() for f in c.replaced
    ):
        changed = None  # a replaced version's archive is gone: its rows cannot be taken out
    for legacy_table in [t for (t,) in query_sql(con, "staging/legacy_staging_tables.sql")]:
        con.execute("drop table staging." + quote_identifier(legacy_table))  # name from the catalog
    params = {
        **{f"raw_{table}_files": files for table, files in archive.items()},
        **staging_settings(settings),
        "run_id": run_id,
        "catalogue_provided": has_catalogue,
    }
    if changed is None:
        task_logger(__name__).info("staging: judging all %d loaded files", len(current.files))
    else:
        task_logger(__name__).info(
            "staging: judging the rows of %d changed files (%d files loaded)",
            sum(len(c.archive_files) for c in changed.values()),
            len(current.files),
        )
    retiring = retire_products and has_catalogue and table_exists(con, "staging.judged_products")
    if retiring:
        run_sql(con, "staging/catalogue_before.sql")
    run_sql(con, "staging/stg_products.sql", params)
    if retiring:
        # before orders are judged against the catalogue: a product a corrected catalogue
        # dropped stays known (retired), and its order lines are not unknown_sku
        run_sql(con, "staging/retire_products.sql", {"run_id": run_id})
    for table in ("orders", "events"):
        if changed is None or table in changed:
            started = time.perf_counter()
            judge_table(con, settings, table, params, None if changed is None else changed[table])
            # judging is most of an ingest (minutes on `large`): say where the time went
            task_logger(__name__).info(
                "staging: %s judged in %.1f s", table, time.perf_counter() - started
            )
        if table == "orders" and not has_catalogue:
            run_sql(con, "staging/stg_products_derived.sql", params)
    run_sql(con, "staging/stg_inventory.sql", params)
    run_sql(
        con,
        "meta/record_staging_build.sql",
        {
            "build_key": current.key,
            "built_at": datetime.now(UTC),
            "settings_key": current.settings_key,
            "files": json.dumps(current.files, sort_keys=True),
        },
    )
    return "all files" if changed is None else "changed files"


def wait_for_next_ingest(summary: IngestSummary, item: LandingFile) -> None:
    """Name a file that changed while it was read as not read: it loads next time."""
    summary.files_not_read[item.source_file] = CHANGED_WHILE_READ
    task_logger(__name__).warning(
        "landing/%s is not read: %s", item.source_file, CHANGED_WHILE_READ
    )


@task(name="ingest", cache_policy=NO_CACHE, **IO_RETRY)
def ingest_landing(
    settings: Settings, run_id: str, full_refresh: bool = False, forget: Sequence[str] = ()
) -> IngestSummary:
    """Load new and corrected landing files and rebuild staging, all or nothing.

    A loaded file that is no longer in landing/ keeps its rows, read from the raw archive,
    with or without `full_refresh` (which reloads the landing files there are and judges
    every row again). Only `forget` (names or glob patterns) takes loaded files' rows out:
    files landed by mistake, already moved out of landing/.

    Raises:
        ContractError: a landing file breaks a file-level rule; nothing was loaded.
        NightshiftError: no orders have been loaded (orders are the one required table), or
            a file to forget was not loaded or is still in landing/.
    """
    discovered = discover_landing(settings.landing_dir)
    landing, settling = settled_files(discovered, settings.landing_settle_seconds)
    summary = IngestSummary(
        run_id=run_id, files_not_read={**contract.files_not_read(settings.landing_dir), **settling}
    )
    for path, why in summary.files_not_read.items():
        task_logger(__name__).warning("landing/%s is not read: %s", path, why)
    with open_warehouse(settings) as con:
        con.execute("begin transaction")  # a whole record of the files, on its own
        adopted = adopt_archive_manifest(con, settings)
        con.execute("commit")
        if adopted:
            task_logger(__name__).warning(
                "a new warehouse: took the %d loaded files the raw archive's manifest lists "
                "(raw/loaded_files.parquet); their rows are judged again, and %d earlier "
                "runs from the published runs table",
                len(adopted),
                adopt_published_runs(con, settings),
            )
        forgotten = files_to_forget(con, discovered, forget)
        pending = files_to_load(con, settings, landing, full_refresh)
        summary.files_unchanged = len(landing) - len(pending)
        for item in check_headers(pending):
            pending.remove(item)
            wait_for_next_ingest(summary, item)
        loaded_at = datetime.now(UTC)
        con.execute("begin transaction")
        try:
            move_legacy_raw_tables(con, settings)
            for source_file in forgotten:
                run_sql(con, "raw/forget_file.sql", {"source_file": source_file})
                task_logger(__name__).info("forgot %s: its rows leave staging", source_file)
                summary.files_forgotten.append(source_file)
            archived_before = loaded_archive_files(con)
            report = progress_reporter(f"loading {len(pending)} landing files", len(pending))
            for done, item in enumerate(pending, start=1):
                try:
                    rows = archive_raw_file(con, settings, item, run_id, loaded_at)
                except FileChangedWhileRead:
                    wait_for_next_ingest(summary, item)
                else:
                    old_archive = archived_before.get(item.source_file)
                    check_order_keys_kept(con, settings, item, old_archive)
                    task_logger(__name__).info("loaded %s: %d rows", item.source_file, rows)
                    summary.files_loaded.append(item.source_file)
                report(done)
            has_catalogue = bool(query_sql(con, "raw/has_catalogue.sql")[0][0])
            summary.staging_judged = judge_staging(
                con,
                settings,
                run_id,
                has_catalogue,
                reloaded=set(summary.files_loaded),
                full=full_refresh,
                # a catalogue forgotten on purpose takes its products with it
                retire_products=not any(f.startswith("products/") for f in forgotten),
            )
            if summary.staging_judged != "nothing":
                run_sql(con, "staging/quarantine_rows.sql")
            run_sql(con, "staging/row_audit.sql", {"run_id": run_id})
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        write_archive_manifest(con, settings)
        prune_archive(con, settings)
        summary.files_only_archived = only_archived(con, discovered)
        if summary.files_only_archived:
            task_logger(__name__).info(
                "%d loaded file(s) no longer in landing/ (%s): their rows stay, read from "
                "the raw archive; `nightshift ingest --forget FILE` takes a file's rows out",
                len(summary.files_only_archived),
                contract.names_shown(summary.files_only_archived),
            )
        fill_summary(con, summary, has_catalogue)
    for table_name, counts in summary.audit.items():
        task_logger(__name__).info(
            "%s: %s rows in, %s staged, %s quarantined, %s duplicates",
            table_name, *(f"{counts[k]:,}" for k in AUDIT_COUNTS),
        )  # fmt: skip
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
        unread = "".join(
            f"; landing/{path} is not read: {why}" for path, why in summary.files_not_read.items()
        )
        raise NightshiftError(
            "no orders loaded: put CSV or Parquet files in landing/orders/ "
            "(or run `nightshift generate`, or `nightshift ingest --source online-retail FILE`)"
            + unread
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
