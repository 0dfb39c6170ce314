"""The file-level contract rules: clear errors naming the file, the column and the rule."""

from __future__ import annotations

import gzip
import io
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


@pytest.mark.parametrize(
    ("header", "shown"), [("sku,SKU", "'sku', 'SKU'"), ("sku,sku", "'sku', 'sku'")]
)
def test_a_column_given_twice_is_refused_not_guessed(
    tmp_path: Path, header: str, shown: str
) -> None:
    """Two columns that could both be `sku` (case-insensitively, or the same name twice) made
    ingest take one of them without a word; the file now breaks a rule that names both."""
    text = f"order_id,line_no,customer_id,{header},quantity,unit_price,ordered_at,country\n"
    path = write(tmp_path, "orders.csv", text + "A1,1,C1,S1,S2,2,3.50,2024-01-02 10:00:00,UK\n")
    with pytest.raises(ContractError) as err:
        contract.read_landing_file(path, contract.ORDERS, "orders/orders.csv")
    assert f"orders/orders.csv: 2 columns ({shown}) could be orders.sku" in str(err.value)
    assert "rule: unique_column" in str(err.value)


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
    (folder / "nested.csv").mkdir(parents=True)
    for name in ("b.csv", "a.parquet", "notes.txt", "c.CSV", "d.csv.GZ", ".upload.csv", "e.gz"):
        (folder / name).write_text("x")
    assert [p.name for p in contract.landing_files(tmp_path, "orders")] == [
        "a.parquet",
        "b.csv",
        "c.CSV",
        "d.csv.GZ",
    ]


def test_what_landing_holds_unread_is_named_with_why(tmp_path: Path) -> None:
    """Files in landing/ that no table reads are named, so rows a shop sent cannot go
    missing without a word; hidden names (uploads in progress, .DS_Store) and the Online
    Retail adapter's folder are not."""
    for name in (
        "orders/2024-01.csv", "orders/2024-02.xlsx", "orders/.DS_Store", "orders/old/x.csv",
        "order/2024-03.csv", "online_retail/lines.parquet", ".generating/orders/x.csv",
        "events.csv", "products/catalogue.csv.gz",
    ):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "orders" / "2024-03.csv").symlink_to(tmp_path / "gone.csv")
    assert contract.landing_files(tmp_path, "orders") == [tmp_path / "orders" / "2024-01.csv"]
    assert contract.files_not_read(tmp_path) == {
        "events.csv": "directly in landing/: a table's files go in its folder "
        "(orders/, events/, products/, inventory/)",
        "order/": "not a table's folder (the folders read are orders/, events/, products/, "
        "inventory/)",
        "orders/2024-02.xlsx": "not a landing file: the names read end in .csv, .csv.gz, .parquet",
        "orders/2024-03.csv": "not a file that can be read (a link to nothing?)",
        "orders/old/": "a folder: only the files directly in orders/ are read",
    }
    assert contract.files_not_read(tmp_path / "absent") == {}


def gzipped(path: Path) -> Path:
    """A gzip-compressed copy of a file beside it, named <name>.gz."""
    packed = path.with_name(path.name + ".gz")
    packed.write_bytes(gzip.compress(path.read_bytes()))
    return packed


def test_a_gzip_compressed_csv_reads_as_its_plain_copy_in_both_readers(tmp_path: Path) -> None:
    """Shops often send their exports gzipped: the fast reader, the tolerant reader (for a
    file with records that are not rows) and the file rules read the compressed copy as
    they read the plain file."""
    plain = write(tmp_path, "o.csv", GOOD_ORDERS + "A1,2,,SKU2,1,1,2024-01-02 10:00:00,UK\n")
    fast = contract.read_landing_file(gzipped(plain), contract.ORDERS, "orders/o.csv.gz")
    assert fast.to_dicts() == contract.read_landing_file(plain, contract.ORDERS, "x").to_dicts()
    broken = write(tmp_path, "b.csv", GOOD_ORDERS + "A1,2,C1,SKU2,1,1,2024-01-02,UK,web,x\n")
    with pytest.raises(ContractError):  # the fast reader refuses it, compressed or not
        contract.read_landing_file(gzipped(broken), contract.ORDERS, "orders/b.csv.gz")
    compressed, as_is = tolerant_read(gzipped(broken)), tolerant_read(broken)
    assert compressed.rows.to_dicts() == as_is.rows.to_dicts()
    assert compressed.unparsed == as_is.unparsed and len(as_is.unparsed) == 1


def test_an_empty_or_cut_gzip_file_breaks_a_file_rule_by_name(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv.gz"
    empty.write_bytes(gzip.compress(b""))
    with pytest.raises(ContractError, match="rule: non_empty"):
        contract.read_landing_file(empty, contract.ORDERS, "orders/empty.csv.gz")
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gzip.compress(GOOD_ORDERS.encode() * 50)[:-20])
    with pytest.raises(ContractError, match="orders/cut.csv.gz: cannot be read") as err:
        contract.read_landing_file(cut, contract.ORDERS, "orders/cut.csv.gz")
    assert "rule: readable" in str(err.value)


def tolerant_read(path: Path, batch_rows: int = 250_000) -> contract.TolerantBatch:
    batches = list(contract.read_csv_tolerantly(path, contract.ORDERS, "orders/o.csv", batch_rows))
    return contract.TolerantBatch(
        pl.concat([b.rows for b in batches]), [u for b in batches for u in b.unparsed]
    )


def test_the_tolerant_reader_gives_the_fast_readers_rows_for_a_file_both_can_read(
    tmp_path: Path,
) -> None:
    """A file that fell back to the tolerant reader must be numbered and valued as the fast
    reader would have: BOM, CRLF, quoted delimiters and newlines, blank lines (null rows),
    short rows (null tails) and empty fields (nulls)."""
    lines = [
        "\ufefforder_id,line_no,customer_id,sku,quantity,unit_price,ordered_at,country,channel",
        'A1,1,C1,SKU1,2,3.50,2024-01-02 10:00:00,"Korea, Republic of",web',
        "",
        'A1,2,,SKU2,1,1,2024-01-02 10:00:00,"two\nlines",',
        "A2,1,C2,SKU3,1,1",
        "A3,1,C3,SKU4,1,1,2024-01-02 10:00:00,Curaçao,app",
    ]
    path = tmp_path / "o.csv"
    path.write_bytes("\r\n".join(lines).encode() + b"\r\n")
    fast = contract.read_landing_file(path, contract.ORDERS, "orders/o.csv")
    tolerant = tolerant_read(path, batch_rows=2)
    assert tolerant.unparsed == []
    assert tolerant.rows.to_dicts() == fast.to_dicts()
    assert fast.height == 5 and fast["country"][3] is None


def test_the_tolerant_reader_keeps_records_that_are_not_rows_apart(tmp_path: Path) -> None:
    header = b"order_id,line_no,customer_id,sku,quantity,unit_price,ordered_at,country,channel"
    body = [
        b"A1,1,C1,SKU1,2,3.50,2024-01-02 10:00:00,UK,web",
        b"A1,2,C1,SKU2,2,3.50,2024-01-02 10:00:00,UK,web,gift wrap",  # a field too many
        b'A1,3,C1,SKU3,2,3.50,2024-01-02 10:00:00,12" vinyl,web',  # a stray quote: fine
        "A1,4,C1,SKU4,2,3.50,2024-01-02 10:00:00,Curaçao,web".encode("latin-1"),
        b'A1,5,C1,SKU5,2,3.50,2024-01-02 10:00:00,"UK"x,web',  # text after a closing quote
        b"A1,6,C1,SKU6,2,3.50,2024-01-02 10:00:00,UK,web",
    ]
    path = tmp_path / "o.csv"
    path.write_bytes(b"\n".join([header, *body]) + b"\n")
    with pytest.raises(ContractError):  # the fast reader refuses the whole file
        contract.read_landing_file(path, contract.ORDERS, "orders/o.csv")
    read = tolerant_read(path, batch_rows=2)
    assert read.rows["source_row"].to_list() == [1, 3, 6]
    assert read.rows["country"].to_list() == ["UK", '12" vinyl', "UK"]
    assert [(u.source_row, u.reason) for u in read.unparsed] == [
        (2, "malformed_row"),
        (4, "bad_encoding"),
        (5, "malformed_row"),
    ]
    too_many, latin, quoted = read.unparsed
    assert too_many.detail.startswith("line 3 of the file has 10 fields where the header has 9")
    assert too_many.text == body[1].decode()
    assert latin.detail.startswith("line 5 of the file: column 'country' holds byte 0xe7")
    assert latin.text == "A1,4,C1,SKU4,2,3.50,2024-01-02 10:00:00,Cura\\xe7ao,web"
    assert quoted.detail.startswith("line 6 of the file is not valid CSV")


def test_a_quote_never_closed_is_fatal_and_names_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, "o.csv", GOOD_ORDERS + 'A1,2,C1,SKU2,1,1,2024-01-02 10:00:00,"UK,web\nA1,3\n'
    )
    with pytest.raises(ContractError) as err:
        list(contract.read_csv_tolerantly(path, contract.ORDERS, "orders/o.csv"))
    assert "orders/o.csv: cannot be parsed: a quoted value that starts on line 3" in str(err.value)
    assert "rule: readable" in str(err.value)


@pytest.mark.parametrize(("delimiter", "name"), [(";", "semicolons"), ("\t", "tabs")])
def test_a_header_separated_by_something_else_than_commas_says_so(
    tmp_path: Path, delimiter: str, name: str
) -> None:
    path = write(tmp_path, "orders.csv", GOOD_ORDERS.replace(",", delimiter))
    with pytest.raises(ContractError) as err:
        contract.read_landing_file(path, contract.ORDERS, "orders/orders.csv")
    assert f"the header is separated by {name}: landing CSV files must use commas" in str(err.value)
    assert "rule: required_column" in str(err.value)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_file_is_named_as_such(tmp_path: Path, encoding: str) -> None:
    """Excel's 'Unicode Text' is UTF-16: read as UTF-8, its header was letters spaced by NUL
    bytes in a 'missing required column' error, with no word of why. With or without a
    byte order mark, the error now names the encoding and how to save the file."""
    path = tmp_path / "orders.csv"
    path.write_bytes(GOOD_ORDERS.encode(encoding))
    with pytest.raises(ContractError) as err:
        contract.read_landing_file(path, contract.ORDERS, "orders/orders.csv")
    assert str(err.value) == (
        "orders/orders.csv: the file is UTF-16 text (Excel's 'Unicode Text' saves so): landing "
        "CSV files are UTF-8; save it as 'CSV UTF-8 (comma delimited)' (rule: readable)"
    )


@pytest.mark.parametrize(
    ("saved_as", "named"),
    [
        ("xlsx", "is a ZIP archive, as an Excel workbook (.xlsx) is, not CSV text: save it as "
                 "'CSV UTF-8 (comma delimited)'"),
        ("parquet", "is a Parquet file, not CSV text: name it .parquet"),
        ("parquet.gz", "is a Parquet file, not CSV text: name it .parquet"),
    ],
)  # fmt: skip
def test_a_workbook_or_parquet_file_named_csv_is_named_as_such(
    tmp_path: Path, saved_as: str, named: str
) -> None:
    """A workbook (or a Parquet export) saved under a .csv name was a 'missing required
    column' error that quoted a header of binary bytes. Now the error says what the file
    is and what to do."""
    orders = pl.read_csv(io.StringIO(GOOD_ORDERS), infer_schema=False)
    path = tmp_path / "orders.csv"
    if saved_as == "xlsx":
        orders.write_excel(path)
    else:
        orders.write_parquet(tmp_path / "orders.parquet")
        data = (tmp_path / "orders.parquet").read_bytes()
        path.write_bytes(gzip.compress(data) if saved_as.endswith(".gz") else data)
    with pytest.raises(ContractError) as err:
        contract.read_landing_file(path, contract.ORDERS, "orders/orders.csv")
    assert str(err.value) == f"orders/orders.csv: the file {named} (rule: readable)"


def test_a_nul_byte_in_a_utf8_file_is_not_taken_for_utf16(tmp_path: Path) -> None:
    path = write(tmp_path, "o.csv", GOOD_ORDERS.replace("UK", "U\0K", 1))
    assert contract.read_landing_file(path, contract.ORDERS, "orders/o.csv").height >= 1
