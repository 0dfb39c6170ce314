"""The SQL runner: statements from sql/ files with only the parameters they use."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import polars as pl
import pytest

from nightshift.settings import load_settings
from nightshift.warehouse import (
    SQL_DIR,
    DamagedFileError,
    open_warehouse,
    quote_identifier,
    quote_literal,
    registered_frames,
    sql_statements,
    statement_params,
)
from tasks.retry import transient_only


def test_each_statement_gets_only_its_parameters() -> None:
    assert statement_params(
        "select $a, $b -- $c in a comment", {"a": 1, "b": 2, "c": 3, "d": 4}
    ) == {"a": 1, "b": 2}


def test_a_missing_parameter_is_named() -> None:
    with pytest.raises(KeyError, match="as_of"):
        statement_params("select * from t where d <= $as_of", {})


def test_registered_frames_are_gone_after_the_block_even_when_it_fails() -> None:
    con = duckdb.connect()
    frames = {"picks": pl.DataFrame({"user": [0, 1]}), "ids": pl.DataFrame({"user": [1]})}
    with registered_frames(con, frames):
        joined = con.execute("select count(*) from picks join ids using (user)").fetchall()
    assert joined == [(1,)]
    with pytest.raises(duckdb.BinderException), registered_frames(con, frames):
        con.execute("select no_such_column from picks")
    for name in frames:
        with pytest.raises(duckdb.CatalogException):
            con.execute(f"select * from {name}")


def test_files_split_into_statements() -> None:
    statements = sql_statements("staging/quarantine_rows.sql")
    assert len(statements) == 2
    assert statements[0].endswith("delete from quarantine.rows")
    assert statements[1].lstrip().startswith("insert into")


def test_every_sql_file_parses() -> None:
    con = duckdb.connect()
    for path in sorted(SQL_DIR.rglob("*.sql")):
        for statement in sql_statements(str(path.relative_to(SQL_DIR))):
            try:
                con.extract_statements(statement)
            except duckdb.ParserException as exc:  # pragma: no cover - the message is the point
                pytest.fail(f"{path.relative_to(SQL_DIR)}: {exc}")


def test_sql_files_use_bind_parameters_not_format_placeholders() -> None:
    placeholder = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}|%\(|%s")
    offenders = [p.name for p in SQL_DIR.rglob("*.sql") if placeholder.search(p.read_text())]
    assert offenders == []


def test_quoting_for_ddl_literals_and_identifiers() -> None:
    con = duckdb.connect()
    con.execute("create table " + quote_identifier('we"ird') + " (x int)")
    con.execute(
        "comment on table "
        + quote_identifier('we"ird')
        + " is "
        + quote_literal("it's; drop table x")
    )
    assert con.execute("select comment from duckdb_tables()").fetchone()[0] == "it's; drop table x"


def test_threads_connecting_at_once_all_get_pythons_scans(tmp_path: Path) -> None:
    """The first connection to a file makes its DuckDB instance, and the Python client adds
    `python_arrow_scan` (behind `register`) after handing it out: five threads connecting at
    once, after every connection had closed, got about 1 failed `register` in 100 ("Table
    Function with name python_arrow_scan does not exist"; a branch failed so in CI).
    `connect_file` takes turns."""
    import threading

    from nightshift.warehouse import connect_file

    path = tmp_path / "race.duckdb"
    connect_file(path).close()
    frame = pl.DataFrame({"a": list(range(1000))})
    errors: list[str] = []
    at_once = threading.Barrier(5)

    def connect_register_close() -> None:
        for _ in range(300):
            at_once.wait()  # every connection is closed: the next connect makes the instance
            con = connect_file(path)
            try:
                con.register("frame", frame)
                assert con.execute("select count(*) from frame").fetchone() == (1000,)
            except duckdb.Error as exc:
                errors.append(str(exc))
            finally:
                con.close()

    threads = [threading.Thread(target=connect_register_close) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


HOLD = """
import duckdb, sys, time
con = duckdb.connect(sys.argv[1])  # for writing, DuckDB's default
print("holding", flush=True)
time.sleep(60)
"""


def test_a_file_another_program_holds_is_a_clear_error_worth_retrying(tmp_path: Path) -> None:
    """DuckDB lets one process write a file, or any number read it. A session left open on
    the warehouse failed the night with DuckDB's IOException and a traceback; now the error
    names the file, the holder and what to do, and the IO tasks retry it (a monitor's
    doctor holds the file for a moment)."""
    import subprocess
    import sys
    from types import SimpleNamespace

    from nightshift.warehouse import FileInUseError, connect_file
    from tasks.retry import transient_only

    for name, advice in {
        "warehouse.duckdb": "close that session (analysts query marts.duckdb), then run again",
        "marts.duckdb": "open the published marts read-only (nightshift query, duckdb -readonly",
    }.items():
        path = tmp_path / name
        duckdb.connect(str(path)).close()
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
            for read_only in (True, False):
                with pytest.raises(FileInUseError) as caught:
                    connect_file(path, read_only=read_only)
                message = str(caught.value)
                assert message.startswith(
                    f"{path} is in use by another program (PID {holder.pid}, "
                )
                assert advice in message
                assert transient_only(None, None, SimpleNamespace(data=caught.value))
        finally:
            holder.kill()
            holder.wait()
        connect_file(path, read_only=True).close()  # free again once the holder is gone


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda path: path.write_bytes(b""), "it does not start as a DuckDB database does"),
        (lambda path: path.write_bytes(path.read_bytes()[:100]), "it ends before its last block"),
        (lambda path: flip_bytes_of_blocks(path), "a block fails its checksum"),
    ],
)
def test_a_damaged_warehouse_is_named_with_what_to_do(tmp_path: Path, damage, says: str) -> None:
    """A warehouse cut short by a copy or restore, overwritten, or failing DuckDB's block
    checksums was a DuckDB traceback from every command and from doctor. DuckDB reads
    blocks as statements need them, so a checksum failure shows at a query, not at connect."""
    settings = load_settings(home=tmp_path)
    with open_warehouse(settings) as con:
        con.execute("create table meta.numbers as select range as n from range(2000000)")
    damage(settings.warehouse_path)
    with pytest.raises(DamagedFileError) as err, open_warehouse(settings, read_only=True) as con:
        con.execute("select sum(n) from meta.numbers").fetchall()
    assert str(err.value).startswith(f"{settings.warehouse_path} is damaged and cannot be read")
    assert says in str(err.value) and "move it aside and run `nightshift ingest`" in str(err.value)
    state = type("State", (), {"data": err.value})()
    assert not transient_only(None, None, state)  # it stays damaged: not retried


def flip_bytes_of_blocks(path: Path) -> None:
    """Invert one byte in every 256 KiB past the file's headers: inside the data blocks."""
    data = bytearray(path.read_bytes())
    for offset in range(300_000, len(data), 262_144):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
