"""DuckDB IO: open the warehouse, run the SQL files in sql/ with bind parameters.

SQL is never assembled from strings: each file under sql/ is a set of statements with
`$name` parameters, and `run_sql` passes each statement only the parameters it uses.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from nightshift.errors import NightshiftError
from nightshift.settings import Settings

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_LINE_COMMENT = re.compile(r"--[^\n]*")


@cache
def sql_statements(relative_path: str) -> tuple[str, ...]:
    """The statements of one sql/ file, split on semicolons that end a line."""
    text = (SQL_DIR / relative_path).read_text()
    parts = re.split(r";\s*(?:\n|$)", text)
    return tuple(p.strip() for p in parts if _LINE_COMMENT.sub("", p).strip())


def sql_digests(*folders: str) -> dict[str, str]:
    """SHA-256 of every .sql file in these sql/ folders: the code part of a build key, so a
    changed query rebuilds what it builds."""
    return {
        str(path.relative_to(SQL_DIR)): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in folders
        for path in sorted((SQL_DIR / folder).glob("*.sql"))
    }


def statement_params(statement: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of `params` this statement names (DuckDB rejects unused ones)."""
    names = set(_PARAM.findall(_LINE_COMMENT.sub("", statement)))
    missing = names - params.keys()
    if missing:
        raise KeyError(f"SQL parameter(s) {sorted(missing)} not given for: {statement[:80]}")
    return {name: params[name] for name in names}


def run_sql(
    con: duckdb.DuckDBPyConnection, relative_path: str, params: Mapping[str, Any] | None = None
) -> None:
    """Run every statement of sql/<relative_path> with its bind parameters."""
    for statement in sql_statements(relative_path):
        con.execute(statement, statement_params(statement, params or {}))


def query_sql(
    con: duckdb.DuckDBPyConnection, relative_path: str, params: Mapping[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """Run a one-statement sql/ file and return all its rows.

    Fetching everything matters: DuckDB 2 refuses further work on a connection that still
    holds an unfinished result.
    """
    (statement,) = sql_statements(relative_path)
    return con.execute(statement, statement_params(statement, params or {})).fetchall()


def query_frame(
    con: duckdb.DuckDBPyConnection, relative_path: str, params: Mapping[str, Any] | None = None
) -> pl.DataFrame:
    """Run a one-statement sql/ file and return its result as a Polars frame (fully fetched)."""
    (statement,) = sql_statements(relative_path)
    return con.sql(statement, params=statement_params(statement, params or {})).pl()


# DuckDB's Python client makes a database instance on the first connection to a file and
# adds its Python scans (`python_arrow_scan`, behind `register`) to it after handing it out: a
# thread connecting to the same file in that instant got an instance without them ("Table
# Function with name python_arrow_scan does not exist", 22 of 2,000 connections when five
# threads connect at once; a branch failed so in CI). Branches on the flow's thread pool open
# and close the warehouse at the same moments, so connecting takes turns.
_CONNECTING = threading.Lock()


class FileInUseError(NightshiftError):
    """Another program holds a DuckDB file this run must open (DuckDB allows one writing
    process, or any number of reading ones). Retried like a transient error: a monitor's
    `nightshift doctor` holds the warehouse for a moment; a session left open does not let go."""

    transient = True

    def __init__(self, path: Path, holder: str, advice: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(
            f"{path} is in use by another program ({holder}): {advice}, then run again"
        )


# DuckDB's message: Could not set lock on file "<path>": Conflicting lock is held in
# <program> (PID <n>). See also ...
_LOCK_CONFLICT = re.compile(r'Could not set lock on file "(?P<path>[^"]+)"')
_LOCK_HOLDER = re.compile(r"lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")

# What to do, by the file's name: analysts open the marts, nobody should hold the warehouse.
_IN_USE_ADVICE = {
    "marts.duckdb": "open the published marts read-only (nightshift query, duckdb -readonly, "
    "duckdb.connect(path, read_only=True)), or close that session",
}


@contextmanager
def lock_conflicts_explained() -> Iterator[None]:
    """Turn DuckDB's lock conflict on a file into a `FileInUseError` that names the file,
    the program holding it and what to do."""
    try:
        yield
    except duckdb.IOException as exc:
        found = _LOCK_CONFLICT.search(str(exc))
        if found is None:
            raise
        path = Path(found["path"])
        holder = _LOCK_HOLDER.search(str(exc))
        held = f"PID {holder['pid']}, {holder['program']}" if holder else "another process"
        advice = _IN_USE_ADVICE.get(path.name, "close that session (analysts query marts.duckdb)")
        raise FileInUseError(path, held, advice) from None


class DamagedFileError(NightshiftError):
    """A DuckDB file this run reads cannot be read: cut short (a copy or restore that did not
    finish), overwritten, or failing DuckDB's block checksums. Not retried: it stays so."""

    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        advice = _DAMAGE_ADVICE.get(path.name, "restore it from a backup")
        super().__init__(f"{path} is damaged and cannot be read ({detail}): {advice}")


# DuckDB's messages for a file that is not whole: a header that is not DuckDB's (an empty
# or overwritten file), blocks past the file's end (cut short), blocks failing their checksum.
_DAMAGE = re.compile(
    r'(?P<header>The file "(?P<header_path>[^"]+)" exists, but it is not a valid DuckDB '
    r'database file)|(?P<short>Could not read enough bytes from file "(?P<short_path>[^"]+)")'
    r"|(?P<checksum>Corrupt database file: computed checksum)"
)
_DAMAGE_DETAIL = {
    "header": "it does not start as a DuckDB database does",
    "short": "it ends before its last block: cut short",
    "checksum": "a block fails its checksum",
}
_DAMAGE_ADVICE = {
    "warehouse.duckdb": "restore it from a backup, or move it aside and run `nightshift "
    "ingest`, which builds a new warehouse from the raw archive and landing/",
    "marts.duckdb": "the next night publishes a whole new file (tables it does not build "
    "come from its own copy of the last publish); until then restore it from a backup, or "
    "read the tables' exports/ partitions",
}


@contextmanager
def damage_explained(path: Path) -> Iterator[None]:
    """Turn DuckDB's error for a damaged file into a `DamagedFileError` naming the file and
    what to do. `path` is the connection's own file, blamed when DuckDB's message (a checksum
    failure) names none."""
    try:
        yield
    except duckdb.Error as exc:
        found = _DAMAGE.search(str(exc))
        if found is None:
            raise
        kind = next(k for k in _DAMAGE_DETAIL if found[k])
        named = found["header_path"] or found["short_path"]
        raise DamagedFileError(Path(named) if named else path, _DAMAGE_DETAIL[kind]) from exc


def connect_file(
    path: Path, read_only: bool = False, config: dict[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """`duckdb.connect`, one thread at a time (see `_CONNECTING`); a file another program
    holds is a `FileInUseError`, a damaged one a `DamagedFileError`."""
    with _CONNECTING, lock_conflicts_explained(), damage_explained(path):
        return duckdb.connect(str(path), read_only=read_only, config=config or {})


def connect(path: Path, settings: Settings, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file with the shop's timezone and the configured memory limit."""
    # Rows carry their own source_file/source_row, so DuckDB need not keep insertion order;
    # dropping it nearly halves the cost of bulk loads (bench/ingest.py).
    config: dict[str, Any] = {
        "memory_limit": settings.duckdb_memory_limit,
        "preserve_insertion_order": False,
    }
    if settings.duckdb_threads:
        config["threads"] = settings.duckdb_threads
    con = connect_file(path, read_only, config)
    run_sql(con, "schema/session.sql", {"timezone": settings.timezone})
    return con


@contextmanager
def open_warehouse(
    settings: Settings, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse connection, with its schemas created; closed on exit."""
    settings.home.mkdir(parents=True, exist_ok=True)
    con = connect(settings.warehouse_path, settings, read_only=read_only)
    try:
        # DuckDB reads a file's blocks as statements need them: damage shows at any of them
        with damage_explained(settings.warehouse_path):
            if not read_only:
                ensure_schema(con, settings.warehouse_path)
            yield con
    finally:
        con.close()


def loaded_files_in(con: duckdb.DuckDBPyConnection, table: str | None = None) -> list[str]:
    """The files the warehouse loaded (of one contract table, or all), relative to landing/,
    whether or not they are still there; empty before the first ingest."""
    if not table_exists(con, "meta.loaded_files"):
        return []
    return sorted(
        source_file
        for source_file, _, _, source_table in query_sql(con, "raw/loaded_digests.sql")
        if table is None or source_table == table
    )


def loaded_archive_files(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Each loaded file's current archive copy (relative to the home), by the file's name
    relative to landing/; the version a reload replaces."""
    return {
        source_file: archive_file
        for source_file, _, archive_file, _ in query_sql(con, "raw/loaded_digests.sql")
    }


def loaded_source_files(settings: Settings, table: str | None = None) -> list[str]:
    """`loaded_files_in` the home's warehouse, read-only; empty without one. A shop may clear
    its landing folder once files are loaded, so an empty folder is not an empty shop."""
    if not settings.warehouse_path.exists():
        return []
    con = connect(settings.warehouse_path, settings, read_only=True)
    try:
        return loaded_files_in(con, table)
    finally:
        con.close()


def orders_present(landing_dir: Path, settings: Settings | None) -> str | None:
    """Why a demo shop must not be generated into `landing_dir`: orders landed there, or
    the home's warehouse (`settings`; None for a folder outside any home) loaded some from a
    landing folder since cleared. None when there are no orders to mix a demo into."""
    from nightshift.contract import landing_files

    if landing_files(landing_dir, "orders"):
        return f"orders already landed in {landing_dir / 'orders'}"
    if settings is not None and (loaded := loaded_source_files(settings, "orders")):
        count = f"{len(loaded)} file{'' if len(loaded) == 1 else 's'}"
        return f"orders already loaded into the warehouse ({count}, e.g. {loaded[0]})"
    return None


# The schema DDL's COMMENT ON statements are catalog alterations to DuckDB: branches open
# the warehouse concurrently from threads, and two transactions commenting on the same
# table conflict ("Catalog write-write conflict"). So the DDL runs once per file in a
# process (a replaced file is noticed: its newest table is missing), under a lock.
_schema_ready: set[str] = set()
_schema_lock = threading.Lock()
SCHEMA_SENTINEL = "meta.feature_build"  # the last table schema/warehouse.sql creates


@contextmanager
def registered_frames(
    con: duckdb.DuckDBPyConnection, frames: Mapping[str, pl.DataFrame]
) -> Iterator[None]:
    """Frames visible to SQL under their names for the block, unregistered after it even when
    a statement fails: a mart's SQL reads a branch's rows this way, without a staging table."""
    for name, frame in frames.items():
        con.register(name, frame)
    try:
        yield
    finally:
        for name in frames:
            con.unregister(name)


def run_sql_over_frames(
    settings: Settings,
    frames: Mapping[str, pl.DataFrame],
    statements: Mapping[str, Mapping[str, Any]],
) -> None:
    """Run each SQL file of `statements` with its parameters, in order, with `frames`
    registered: how a model branch builds its mart from the rows it computed."""
    with open_warehouse(settings) as con, registered_frames(con, frames):
        for relative_path, params in statements.items():
            run_sql(con, relative_path, params)


def ensure_schema(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Create the warehouse's schemas and base tables (idempotent), once per file and process."""
    key = str(path.resolve())
    with _schema_lock:
        if key in _schema_ready and table_exists(con, SCHEMA_SENTINEL):
            return
        run_sql(con, "schema/warehouse.sql")
        _schema_ready.add(key)


def table_exists(con: duckdb.DuckDBPyConnection, qualified_name: str) -> bool:
    schema, _, name = qualified_name.rpartition(".")
    rows = query_sql(con, "schema/table_exists.sql", {"schema": schema or "main", "name": name})
    return bool(rows[0][0])


# DuckDB binds no parameters in DDL such as COMMENT ON and CREATE VIEW. The few such
# statements are built here and nowhere else: identifiers come from the table registry or
# DuckDB's own catalog, never from users, and both kinds of name and literal are quoted.


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def copy_comments(
    con: duckdb.DuckDBPyConnection, source: tuple[str, str, str], target: tuple[str, str, str]
) -> None:
    """Copy a table's COMMENT ON texts (table and columns) to a copy of it.

    `source` and `target` are (database, schema, table) as DuckDB's catalog names them.
    """
    rows = query_sql(
        con,
        "schema/table_comments.sql",
        {"database": source[0], "schema": source[1], "name": source[2]},
    )
    qualified = ".".join(quote_identifier(part) for part in target)
    for column, comment in rows:
        if comment is None:
            continue
        if column is None:
            con.execute("comment on table " + qualified + " is " + quote_literal(comment))
        else:
            con.execute(
                "comment on column " + qualified + "." + quote_identifier(column)
                + " is " + quote_literal(comment)
            )  # fmt: skip
