"""The analyst surface on real marts from two tiny nights (a week apart): read-only queries,
tables and describe, the data dictionary's freshness, and every example query."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from nightshift.catalog import QueryRefused, data_dictionary, refuse_writes
from tests.conftest import TINY_END

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def analyst_home(
    prefect_api: None, tiny_shop: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """Night 1 (a week before TINY_END: segments and demand) and night 2 (all models)."""
    from flows.nightly import nightly

    home = tmp_path_factory.mktemp("analyst") / "home"
    shutil.copytree(tiny_shop / "landing", home / "landing")
    previous = os.environ.get("NIGHTSHIFT_HOME")
    os.environ["NIGHTSHIFT_HOME"] = str(home)
    try:
        nightly(as_of=TINY_END - timedelta(days=7), models=["demand", "segments"])
        nightly(as_of=TINY_END)
        yield home
    finally:
        if previous is None:
            os.environ.pop("NIGHTSHIFT_HOME", None)
        else:
            os.environ["NIGHTSHIFT_HOME"] = previous


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nightshift.cli", *args, "--home", str(home)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def example_queries() -> dict[str, str]:
    text = (ROOT / "docs" / "analyst_queries.sql").read_text()
    parts = re.split(r"^-- name: (\w+)\n", text, flags=re.M)
    return dict(zip(parts[1::2], (p.strip() for p in parts[2::2]), strict=True))


@pytest.mark.parametrize(
    "sql",
    [
        "delete from runs",
        "insert into runs select * from runs",
        "create table x as select 1",
        "drop table kpi_daily",
        "copy kpi_daily to '/tmp/out.csv'",
        "attach '/tmp/other.duckdb' as other",
        "select 1; update runs set status = 'x'",
    ],
)
def test_statements_that_write_are_refused_before_running(sql: str) -> None:
    with pytest.raises(QueryRefused, match="refused: marts.duckdb is read-only"):
        refuse_writes(sql)


def test_reads_pass_and_the_cli_refuses_writes_with_a_clear_message(analyst_home: Path) -> None:
    refuse_writes("with a as (select 1) select * from a; explain select 1; pragma version")
    before = (analyst_home / "marts.duckdb").read_bytes()
    done = cli(analyst_home, "query", "delete from runs")
    assert done.returncode == 2
    assert done.stderr.startswith("error: DELETE statements are refused")
    assert (analyst_home / "marts.duckdb").read_bytes() == before
    out = analyst_home.parent / "kpi.parquet"
    done = cli(
        analyst_home, "query", "select * from kpi_daily", "--format", "parquet", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    with duckdb.connect() as con:
        rows = con.execute("select count(*) from read_parquet($p)", {"p": str(out)}).fetchone()[0]
    assert rows > 100


def test_tables_and_describe_show_what_is_published(analyst_home: Path) -> None:
    done = cli(analyst_home, "tables")
    assert done.returncode == 0, done.stderr
    for table in ("recommendations", "inventory_plan", "price_recommendations", "kpi_daily"):
        assert table in done.stdout
    assert TINY_END.isoformat() in done.stdout
    done = cli(analyst_home, "describe", "inventory_plan")
    assert done.returncode == 0, done.stderr
    assert "safety_stock" in done.stdout and "z x sqrt(" in done.stdout
    done = cli(analyst_home, "describe", "no_such_table")
    assert done.returncode == 2 and "no published table 'no_such_table'" in done.stderr


def test_every_published_column_is_described(analyst_home: Path) -> None:
    with duckdb.connect(str(analyst_home / "marts.duckdb"), read_only=True) as con:
        bare = con.execute(
            "select c.table_name, c.column_name from duckdb_columns() c "
            "join duckdb_tables() t on t.table_name = c.table_name and t.schema_name = c.schema_name "
            "where c.schema_name = 'main' and coalesce(c.comment, '') = ''"
        ).fetchall()
        tables = con.execute(
            "select table_name from duckdb_tables() where coalesce(comment, '') = ''"
        ).fetchall()
    assert bare == [] and tables == []


def test_the_data_dictionary_in_docs_is_up_to_date(analyst_home: Path) -> None:
    with duckdb.connect(str(analyst_home / "marts.duckdb"), read_only=True) as con:
        generated = data_dictionary(con)
    committed = (ROOT / "docs" / "data_dictionary.md").read_text()
    assert committed == generated, (
        "docs/data_dictionary.md is out of date: run a night, then "
        "`nightshift dictionary --out docs/data_dictionary.md`"
    )


@pytest.mark.parametrize("name", sorted(example_queries()))
def test_every_example_query_runs_and_returns_rows(analyst_home: Path, name: str) -> None:
    sql = example_queries()[name]
    refuse_writes(sql)
    with duckdb.connect(str(analyst_home / "marts.duckdb"), read_only=True) as con:
        rows = con.execute(sql).fetchall()
    assert rows, f"{name} returned no rows on the tiny run"
