"""`nightshift query`'s output, read batch by batch from a real DuckDB result: the same text
as formatting the whole result at once, and nothing half-written when the query fails."""

from __future__ import annotations

import io
import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from nightshift import query_output
from nightshift.files import written_atomically

# dates, decimals, nulls and text with a comma and a quote, over several 1,000-row batches
ROWS_SQL = """
select range as id, date '2024-01-01' + range::int as day, (range / 7)::decimal(18, 4) as price,
       case when range % 5 = 0 then null else 'sku, "' || range || '"' end as sku
from range(2_345)
"""


def reader(sql: str = ROWS_SQL, batch_size: int = 1_000):
    return duckdb.connect().sql(sql).to_arrow_reader(batch_size)


def whole() -> pl.DataFrame:
    return duckdb.connect().sql(ROWS_SQL).pl()


def test_the_preview_keeps_the_first_rows_and_counts_every_row() -> None:
    shown = query_output.preview(reader(), rows=1_500)  # crosses a batch boundary
    assert shown.total == 2_345
    assert shown.rows.equals(whole().head(1_500))
    empty = query_output.preview(reader("select 1 as a where false"))
    assert (empty.total, empty.rows.columns) == (0, ["a"])


def test_csv_and_json_written_batch_by_batch_match_the_whole_result() -> None:
    csv, js = io.StringIO(), io.StringIO()
    assert query_output.write_text(reader(), "csv", csv) == 2_345
    assert query_output.write_text(reader(), "json", js) == 2_345
    assert csv.getvalue() == whole().write_csv()
    assert js.getvalue() == json.dumps(whole().to_dicts(), default=str, indent=2) + "\n"
    for fmt, expected in (("csv", "a,b\n"), ("json", "[]\n")):
        out = io.StringIO()
        assert query_output.write_text(reader("select 1 as a, 2 as b where false"), fmt, out) == 0
        assert out.getvalue() == expected


def test_parquet_is_written_whole_and_a_failed_query_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "result.parquet"
    with written_atomically(path) as partial:
        assert query_output.write_parquet(reader(), partial) == 2_345
    assert pl.read_parquet(path).equals(whole())
    # DuckDB computes the result as it is read: a cast failing on row 300,001 surfaces there,
    # after the first batches were written
    failing = "select cast(if(range > 300_000, 'x', '1') as int) as v from range(400_000)"
    broken = tmp_path / "broken.csv"
    with (
        pytest.raises(query_output.QueryFailed, match="Could not convert string 'x'"),
        written_atomically(broken) as partial,
        partial.open("w") as handle,
    ):
        query_output.write_text(reader(failing), "csv", handle)
    assert list(tmp_path.iterdir()) == [path]
