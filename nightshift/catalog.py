"""What analysts see of marts.duckdb: the published tables, their descriptions, the data
dictionary, and the read-only query path.

Descriptions live in the SQL that builds each mart (`COMMENT ON`, sql/marts/) and travel
with the published file, so the dictionary is generated from the file itself
(`nightshift dictionary`) and cannot drift from what analysts query.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from nightshift.errors import NightshiftError
from nightshift.warehouse import connect_file, query_sql

# Statements the read-only query path runs; anything else is refused before DuckDB sees it.
READ_STATEMENTS = {"SELECT", "EXPLAIN", "PRAGMA"}


class QueryRefused(NightshiftError):
    """A statement that would write, attach or copy out was given to the read-only path."""


def refuse_writes(sql: str) -> None:
    """Raise QueryRefused naming the first statement that is not a read."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"cannot parse the query: {exc}") from None
    if not statements:
        raise QueryRefused("no statement given")
    for statement in statements:
        kind = statement.type.name
        if kind not in READ_STATEMENTS:
            raise QueryRefused(
                f"{kind} statements are refused: marts.duckdb is read-only here (only "
                "SELECT, EXPLAIN and PRAGMA run); the nightly run is what publishes it. "
                "To save a result use --out FILE."
            )


def open_marts(path: Path) -> duckdb.DuckDBPyConnection:
    if not path.exists():
        raise NightshiftError(f"no published marts at {path}; run `nightshift run` first")
    return connect_file(path, read_only=True)


@dataclass(frozen=True)
class TableInfo:
    name: str
    kind: str  # table or view
    description: str
    rows: int | None
    as_of: str | None  # the newest as_of in it, for dated tables


def published_tables(con: duckdb.DuckDBPyConnection, counts: bool = True) -> list[TableInfo]:
    """Every table and view in the published file, with rows and newest as_of if asked."""
    found = query_sql(con, "catalog/published_tables.sql")
    infos = []
    for name, kind, description in found:
        rows = as_of = None
        if counts and kind == "table":
            table = con.table(name)
            rows = table.aggregate("count(*)").fetchall()[0][0]
            if "as_of" in table.columns:
                newest = table.aggregate("max(as_of)").fetchall()[0][0]
                as_of = str(newest) if newest is not None else None
        infos.append(TableInfo(name, kind, description, rows, as_of))
    return infos


def table_columns(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple[str, str, str]]:
    """(column, type, description) of a published table or view, in table order."""
    rows = query_sql(con, "catalog/table_columns.sql", {"name": name})
    if not rows:
        names = ", ".join(t.name for t in published_tables(con, counts=False))
        raise NightshiftError(f"no published table {name!r}; published: {names}")
    return rows


def data_dictionary(con: duckdb.DuckDBPyConnection) -> str:
    """The data dictionary as markdown: every published table, its meaning and its columns.
    Deterministic (no row counts or dates), so a test can tell when the file is stale."""
    lines = [
        "# Data dictionary",
        "",
        "Generated from `marts.duckdb` by `nightshift dictionary`; do not edit by hand (the",
        "descriptions are the `COMMENT ON` statements in sql/marts/). Dated tables also have a",
        "`<table>_history` view over every night's export partition, with the same columns.",
        "",
    ]
    infos = published_tables(con, counts=False)
    for info in (i for i in infos if i.kind == "table"):
        lines += [f"## {info.name}", "", info.description, "", "| column | type | meaning |"]
        lines.append("|---|---|---|")
        for column, dtype, description in table_columns(con, info.name):
            lines.append(f"| `{column}` | {dtype} | {description.replace('|', '/')} |")
        lines.append("")
    views = [i for i in infos if i.kind == "view"]
    if views:
        lines += ["## History views", "", "| view | meaning |", "|---|---|"]
        lines += [f"| `{v.name}` | {v.description} |" for v in views]
        lines.append("")
    return "\n".join(lines)
