"""The file-level contract rules: clear errors naming the file, the column and the rule."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from nightshift import contract
from nightshift.errors import ContractError

GOOD_ORDERS = (
    "order_id,line_no,customer_id,sku,quantity,unit_price,ordered_at,country\n"
    "A1,1,C1,SKU1,2,3.50,2024-01-02 10:00:00,UK\n"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_csv_as_text_with_one_based_rows_and_optional_columns_filled(tmp_path: Path) -> None:
    path = write(tmp_path, "orders.csv", GOOD_ORDERS + "A1,2,,SKU2,1,1,2024-01-02 10:00:00,UK\n")
    frame = contract.read_landing_file(path, contract.ORDERS, "orders/orders.csv")
    assert frame["source_row"].to_list() == [1, 2]
    assert frame["channel"].to_list() == [None, None]  # optional column, absent from the file
    assert frame["customer_id"].to_list() == ["C1", None]  # empty field is null
    assert all(dtype == pl.String for name, dtype in frame.schema.items() if name != "source_row")


def test_missing_required_column_names_file_column_and_rule(tmp_path: Path) -> None:
    path = write(
        tmp_path, "orders.csv", "order_id,line_no,sku,quantity,unit_price,country\nA,1,S,1,1,UK\n"
    )
    with pytest.raises(ContractError) as err:
        contract.read_landing_file(path, contract.ORDERS, "orders/orders.csv")
    message = str(err.value)
    assert "orders/orders.csv" in message
    assert "customer_id" in message and "ordered_at" in message
    assert "rule: required_column" in message


def test_column_names_match_case_insensitively(tmp_path: Path) -> None:
    path = write(tmp_path, "orders.csv", GOOD_ORDERS.replace("order_id", "Order_ID"))
    frame = contract.read_landing_file(path, contract.ORDERS, "orders.csv")
    assert frame["order_id"].to_list() == ["A1"]


def test_wrong_parquet_type_names_column_and_types(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "order_id": ["A"],
            "line_no": [1],
            "customer_id": ["C"],
            "sku": ["S"],
            "quantity": [[1, 2]],  # a list cannot hold an integer quantity
            "unit_price": [1.0],
            "ordered_at": ["2024-01-01"],
            "country": ["UK"],
        }
    )
    path = tmp_path / "orders.parquet"
    frame.write_parquet(path)
    with pytest.raises(ContractError) as err:
        contract.read_landing_file(path, contract.ORDERS, "orders/orders.parquet")
    assert "orders/orders.parquet" in str(err.value)
    assert "'quantity'" in str(err.value) and "rule: column_type" in str(err.value)


def test_typed_parquet_is_rendered_as_parseable_text(tmp_path: Path) -> None:
    from datetime import datetime

    frame = pl.DataFrame(
        {
            "order_id": [536365],
            "line_no": [1],
            "customer_id": [17850.0],
            "sku": ["85123A"],
            "quantity": [6],
            "unit_price": [2.55],
            "ordered_at": [datetime(2010, 12, 1, 8, 26)],
            "country": ["United Kingdom"],
        }
    )
    path = tmp_path / "orders.parquet"
    frame.write_parquet(path)
    row = contract.read_landing_file(path, contract.ORDERS, "orders.parquet").row(0, named=True)
    assert row["order_id"] == "536365"
    assert row["customer_id"] == "17850"  # an integral float loses its '.0'
    assert row["unit_price"] == "2.55"
    assert row["ordered_at"].startswith("2010-12-01 08:26:00")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("", "empty (0 bytes)"), (GOOD_ORDERS.splitlines()[0] + "\n", "no data rows")],
)
def test_empty_file_is_an_error(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, "orders.csv", text)
    with pytest.raises(ContractError) as err:
        contract.read_landing_file(path, contract.ORDERS, "orders/orders.csv")
    assert fragment in str(err.value) and "rule: non_empty" in str(err.value)


def test_landing_files_are_listed_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "orders"
    folder.mkdir()
    for name in ("b.csv", "a.parquet", "notes.txt", "c.CSV"):
        (folder / name).write_text("x")
    assert [p.name for p in contract.landing_files(tmp_path, "orders")] == [
        "a.parquet",
        "b.csv",
        "c.CSV",
    ]


@pytest.mark.parametrize("chunk_size", [3, 7, 1 << 24])
def test_line_of_finds_the_line_a_fragment_starts_on_across_chunk_edges(
    tmp_path: Path, chunk_size: int
) -> None:
    lines = ["a,b", "1,x", "22,yy", '333,"zz', "zz", "4444,w"]
    path = tmp_path / "f.csv"
    path.write_text("\n".join(lines) + "\n")
    for number, line in enumerate(lines, start=1):
        if line == "zz":
            continue  # also the tail of line 4's field: the first occurrence wins
        assert contract.line_of(path, line.encode(), chunk_size) == number
    assert contract.line_of(path, b'"zz\nzz', chunk_size) == 4
    assert contract.line_of(path, b"not there", chunk_size) is None
