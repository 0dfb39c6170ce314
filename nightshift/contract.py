"""The input data contract, declared once, and its check at the door.

A landing file is read into an all-text frame with its 1-based data row number
(`source_row`, the header not counted), after three file-level rules:

- `non_empty`: the file has at least one data row;
- `required_column`: every required column is present (names are matched case-insensitively);
- `unique_column`: no contract column is matched by two of the file's columns;
- `column_type`: a typed (Parquet) column has a type that can hold the contract's kind.

A file that breaks one of them raises `ContractError` and nothing of it is loaded. Values are
not judged here: a value that does not parse is a row problem, and rows are quarantined with a
reason in SQL (`sql/staging/`), never fatal.

A CSV record that cannot become a row of columns at all is a row problem too: more fields
than the header (a delimiter inside an unquoted value), broken quoting, or bytes that are not
UTF-8. Polars' fast reader refuses the whole file for one such record, so such a file is read
again by `read_csv_tolerantly`, which hands back its good rows and those records (`Unparsed`,
quarantined as `malformed_row` or `bad_encoding` with their text) separately. Only a quote
that is never closed, which swallows the rest of the file, stays fatal, naming its line.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from nightshift.errors import ContractError
from nightshift.files import gzip_damage_named, open_bytes
from nightshift.online_retail import CATALOGUE_LINES_DIR

# Landing formats by how a file's name ends (lower-cased). Gzip-compressed CSV is how many
# shops export; both CSV readers (Polars' and the tolerant one) read it as it is.
LANDING_FORMATS = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class Column:
    """One contract column. `required` means the file must have it; nullable values are fine."""

    name: str
    kind: str  # str | int | decimal | float | bool | timestamp | date
    required: bool = True
    description: str = ""


@dataclass(frozen=True)
class TableContract:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    required_table: bool = False

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


ORDERS = TableContract(
    name="orders",
    key=("order_id", "line_no"),
    required_table=True,
    columns=(
        Column("order_id", "str", description="Order (invoice) id."),
        Column("line_no", "int", description="Line number within the order."),
        Column("customer_id", "str", description="Customer id; null for a guest."),
        Column("sku", "str", description="Product code."),
        Column("quantity", "int", description="Units; negative for a return."),
        Column("unit_price", "decimal", description="Price per unit."),
        Column("ordered_at", "timestamp", description="When the line was ordered."),
        Column("country", "str", description="Customer's country."),
        Column("channel", "str", required=False, description="Sales channel."),
    ),
)

EVENTS = TableContract(
    name="events",
    key=(),
    columns=(
        Column("user_id", "str", description="Customer id of the visitor."),
        Column("session_id", "str", description="Browsing session id."),
        Column("sku", "str", description="Product the event is about; null for page events."),
        Column("event_type", "str", description="impression, view, add_to_cart or purchase."),
        Column("ts", "timestamp", description="When the event happened."),
    ),
)

PRODUCTS = TableContract(
    name="products",
    key=("sku",),
    columns=(
        Column("sku", "str", description="Product code."),
        Column("name", "str", required=False, description="Product name."),
        Column("category", "str", required=False, description="Product category."),
        Column("unit_cost", "decimal", required=False, description="Cost per unit."),
        Column("list_price", "decimal", description="Catalogue price per unit."),
        Column("active", "bool", required=False, description="Still sold."),
    ),
)

INVENTORY = TableContract(
    name="inventory",
    key=("sku", "as_of"),
    columns=(
        Column("sku", "str", description="Product code."),
        Column("on_hand", "int", description="Units in stock."),
        Column("on_order", "int", required=False, description="Units ordered, not received."),
        Column("lead_time_days", "int", required=False, description="Supplier lead time."),
        Column("lead_time_std_days", "float", required=False, description="Its std. deviation."),
        Column("as_of", "date", description="Snapshot date."),
    ),
)

CONTRACTS: dict[str, TableContract] = {
    contract.name: contract for contract in (ORDERS, EVENTS, PRODUCTS, INVENTORY)
}

EVENT_TYPES = ("impression", "view", "add_to_cart", "purchase")

# Which Arrow/Polars types can carry each contract kind. Text is always accepted because its
# values are parsed (and, if bad, quarantined) row by row.
_ACCEPTED: dict[str, tuple[str, ...]] = {
    "str": ("string", "integer", "float"),
    "int": ("string", "integer", "float"),
    "decimal": ("string", "integer", "float", "decimal"),
    "float": ("string", "integer", "float", "decimal"),
    "bool": ("string", "boolean", "integer"),
    "timestamp": ("string", "datetime", "date"),
    "date": ("string", "date", "datetime"),
}


def type_family(dtype: pl.DataType) -> str:
    """The family of a Polars dtype, as the contract's acceptance table names it."""
    if dtype in (pl.String, pl.Categorical, pl.Enum) or isinstance(dtype, pl.Categorical):
        return "string"
    if dtype.is_integer():
        return "integer"
    if dtype.is_float():
        return "float"
    if isinstance(dtype, pl.Decimal):
        return "decimal"
    if dtype == pl.Boolean:
        return "boolean"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    if dtype == pl.Date:
        return "date"
    if dtype == pl.Null:
        return "null"
    return str(dtype)


def landing_format(path: Path) -> str | None:
    """'csv' or 'parquet' for a landing file's name, None for any other file."""
    name = path.name.lower()
    return next((fmt for ending, fmt in LANDING_FORMATS.items() if name.endswith(ending)), None)


def is_hidden(path: Path) -> bool:
    """A name starting with '.': an upload in progress, an editor's or the OS's file, or
    generate's folder in the making. Never read, never reported."""
    return path.name.startswith(".")


def landing_files(landing_dir: Path, table: str) -> list[Path]:
    """The table's landing files in name order (the order that settles key conflicts)."""
    folder = landing_dir / table
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not is_hidden(p) and landing_format(p) is not None
    )


def landed_source_files(landing_dir: Path) -> list[str]:
    """Every table's landing files, named as ingest records them (`orders/2024-01.csv`)."""
    return [
        path.relative_to(landing_dir).as_posix()
        for table in CONTRACTS
        for path in landing_files(landing_dir, table)
    ]


def names_shown(names: Sequence[str], shown: int = 3) -> str:
    """The first few of `names` for a one-line message: `a, b, c, ...`."""
    return ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")


def files_not_read(landing_dir: Path) -> dict[str, str]:
    """What sits in landing/ that ingest does not read, by path relative to it, with why.

    A shop that exports .xlsx, nests its files in a folder or drops them in landing/order/
    would otherwise find its rows missing from the morning's tables with no word said;
    ingest names them instead. The Online Retail adapter's folder of catalogue lines is
    known and not named."""
    if not landing_dir.is_dir():
        return {}
    formats = ", ".join(LANDING_FORMATS)
    tables = ", ".join(f"{name}/" for name in CONTRACTS)
    found: dict[str, str] = {}
    for entry in sorted(landing_dir.iterdir()):
        if is_hidden(entry) or entry.name == CATALOGUE_LINES_DIR:
            continue
        if not entry.is_dir():
            found[entry.name] = f"directly in landing/: a table's files go in its folder ({tables})"
        elif entry.name not in CONTRACTS:
            found[f"{entry.name}/"] = f"not a table's folder (the folders read are {tables})"
        else:
            for inner in sorted(entry.iterdir()):
                name = f"{entry.name}/{inner.name}"
                if is_hidden(inner):
                    continue
                if inner.is_dir():
                    found[f"{name}/"] = (
                        f"a folder: only the files directly in {entry.name}/ are read"
                    )
                elif landing_format(inner) is None:
                    found[name] = f"not a landing file: the names read end in {formats}"
                elif not inner.is_file():
                    found[name] = "not a file that can be read (a link to nothing?)"
    return found


def scan_source(path: Path) -> pl.LazyFrame:
    """Scan a CSV (every column as text, nothing inferred; gzip-compressed or not) or a
    Parquet file lazily."""
    if landing_format(path) == "parquet":
        return pl.scan_parquet(path, glob=False)
    return pl.scan_csv(
        path, infer_schema=False, empty_string_is_null=True, raise_if_empty=False, glob=False
    )


# Polars reads a CSV header that repeats a name as <name>_duplicated_<n> for the repeats.
REPEATED_NAME = re.compile(r"_duplicated_\d+$")


def check_columns(source_file: str, schema: pl.Schema, contract: TableContract) -> dict[str, str]:
    """Map contract columns to the file's columns, raising on a missing, repeated or mistyped
    one. A contract column that two of the file's columns could be (`sku` twice, or `SKU`
    beside `sku`) is refused rather than one of them taken silently."""
    matching: dict[str, list[str]] = {}
    for name in schema.names():
        matching.setdefault(REPEATED_NAME.sub("", name).strip().lower(), []).append(name)
    mapping: dict[str, str] = {}
    missing = []
    for column in contract.columns:
        candidates = matching.get(column.name, [])
        if len(candidates) > 1:
            shown = ", ".join(repr(REPEATED_NAME.sub("", name)) for name in candidates)
            raise ContractError(
                source_file,
                "unique_column",
                f"{len(candidates)} columns ({shown}) could be {contract.name}.{column.name} "
                "(names match case-insensitively): keep one",
            )
        found = candidates[0] if candidates else None
        if found is None:
            if column.required:
                missing.append(column.name)
            continue
        family = type_family(schema[found])
        if family not in (*_ACCEPTED[column.kind], "null"):
            raise ContractError(
                source_file,
                "column_type",
                f"column {found!r} has type {schema[found]}, but {contract.name}.{column.name} "
                f"is {column.kind} (accepted: {', '.join(_ACCEPTED[column.kind])})",
            )
        mapping[column.name] = found
    if missing:
        raise ContractError(
            source_file,
            "required_column",
            f"missing required column(s) {', '.join(missing)} for {contract.name}; "
            f"found {', '.join(schema.names()) or 'no columns'}{delimiter_hint(schema, contract)}",
        )
    return mapping


def delimiter_hint(schema: pl.Schema, contract: TableContract) -> str:
    """Advice for a CSV whose whole header read as one column because it is separated by
    something other than commas (a spreadsheet's ';' export, a tab-separated file)."""
    if len(schema) != 1:
        return ""
    (header,) = schema.names()
    for delimiter, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
        names = {part.strip().lower() for part in header.split(delimiter)}
        if len(names) > 1 and names & set(contract.column_names):
            return f" (the header is separated by {name}: landing CSV files must use commas)"
    return ""


def as_text(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Render a typed value as the text the staging SQL parses; integral floats lose '.0',
    zone-aware timestamps keep their offset."""
    family = type_family(dtype)
    if family == "float":
        return (
            pl.when(expr == expr.round(0))
            .then(expr.cast(pl.Int64, strict=False).cast(pl.String))
            .otherwise(expr.cast(pl.String))
        )
    if family == "datetime":
        # a zone-aware column keeps its offset: without it, staging would read the wall
        # time in the shop's timezone and move the instant by the difference
        zoned = getattr(dtype, "time_zone", None) is not None
        return expr.dt.to_string("%Y-%m-%d %H:%M:%S%.f" + ("%:z" if zoned else ""))
    return expr.cast(pl.String)


SAVE_AS_CSV = "save it as 'CSV UTF-8 (comma delimited)'"

# A file's first bytes, for files that are not CSV text but land under a .csv name.
NOT_CSV_SIGNATURES = {
    b"PK\x03\x04": f"is a ZIP archive, as an Excel workbook (.xlsx) is, not CSV text: {SAVE_AS_CSV}",
    b"\xd0\xcf\x11\xe0": f"is an old Excel workbook (.xls), not CSV text: {SAVE_AS_CSV}",
    b"PAR1": "is a Parquet file, not CSV text: name it .parquet",
}


def not_csv_text(path: Path) -> str | None:
    """What a CSV landing file holds instead of UTF-8 text, as the end of a sentence that
    starts "the file", or None when it is text.

    Read as CSV, each gave a 'missing required column' error that quoted its bytes as the
    header: binary for a workbook or a Parquet file saved under a .csv name, letters spaced
    by NULs for UTF-16 (a byte order mark, or the NUL that UTF-16 puts beside every ASCII
    character), whose rows would all have been bad_encoding."""
    with open_bytes(path) as handle:
        start = handle.read(1024)
    for signature, what in NOT_CSV_SIGNATURES.items():
        if start.startswith(signature):
            return what
    if start[:2] in (b"\xff\xfe", b"\xfe\xff") or start.count(b"\x00") * 4 >= len(start) > 0:
        return (
            "is UTF-16 text (Excel's 'Unicode Text' saves so): landing CSV files are UTF-8; "
            + SAVE_AS_CSV
        )
    return None


def scan_checked(
    path: Path, contract: TableContract, source_file: str
) -> tuple[pl.LazyFrame, pl.Schema, dict[str, str]]:
    """Scan a landing file and apply the rules that need no data: non-empty bytes, readable,
    required columns, usable types. Returns the scan, its schema and the column mapping.

    Raises:
        ContractError: naming the file and the rule it breaks.
    """
    if path.stat().st_size == 0:
        raise ContractError(source_file, "non_empty", "the file is empty (0 bytes)")
    try:
        with gzip_damage_named(path, source_file):
            if landing_format(path) == "csv" and (instead := not_csv_text(path)):
                raise ContractError(source_file, "readable", f"the file {instead}")
            lazy = scan_source(path)
            schema = lazy.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ContractError(source_file, "readable", f"cannot be read: {exc}") from exc
    if not schema and landing_format(path) == "csv":
        # a compressed file is never 0 bytes, but what it holds can be
        raise ContractError(source_file, "non_empty", "the file is empty (no header, no rows)")
    return lazy, schema, check_columns(source_file, schema, contract)


def landing_rows(path: Path, contract: TableContract, source_file: str) -> pl.LazyFrame:
    """A landing file's rows as the contract's columns, all text, plus `source_row` (1-based),
    lazily: the ingest streams it into the raw archive without holding the file in memory.

    Raises:
        ContractError: the file is empty, lacks a required column, or has an unusable type.
    """
    lazy, schema, mapping = scan_checked(path, contract, source_file)
    selected = [
        as_text(pl.col(mapping[c.name]), schema[mapping[c.name]]).alias(c.name)
        if c.name in mapping
        else pl.lit(None, dtype=pl.String).alias(c.name)
        for c in contract.columns
    ]
    return (
        lazy.select(selected)
        .with_row_index("source_row", offset=1)
        .select(pl.col("source_row").cast(pl.Int64), *contract.column_names)
    )


def parse_failure(exc: Exception) -> str:
    """The part of a Polars parse error that says what is wrong with the file, without the
    schema-inference advice that does not apply to an all-text read. (The ingest reads a CSV
    file that Polars refuses again record by record, which names each bad record's line.)"""
    text = str(exc)
    if "Original error: ```" in text:
        text = text.split("Original error: ```", 1)[1].split("```", 1)[0]
    return " ".join(text.split())


@contextmanager
def parse_errors_named(source_file: str) -> Iterator[None]:
    """Turn a Polars parse error raised while a landing file's rows are read into the
    contract's `readable` error, naming the file."""
    try:
        yield
    except pl.exceptions.PolarsError as exc:
        raise ContractError(
            source_file, "readable", f"cannot be parsed: {parse_failure(exc)}"
        ) from exc


def require_rows(rows: int, source_file: str) -> None:
    """The `non_empty` rule for a file that has a header: it must have a data row."""
    if rows == 0:
        raise ContractError(source_file, "non_empty", "the file has a header but no data rows")


def read_landing_file(path: Path, contract: TableContract, source_file: str) -> pl.DataFrame:
    """Read one landing file into the contract's columns, all text, plus `source_row`, in
    memory (the ingest streams the same rows into its archive instead: `landing_rows`).

    Raises:
        ContractError: the file is empty, lacks a required column, has an unusable type or
            cannot be parsed.
    """
    lazy = landing_rows(path, contract, source_file)
    with gzip_damage_named(path, source_file), parse_errors_named(source_file):
        frame = lazy.collect()
    require_rows(frame.height, source_file)
    return frame


# Python's csv module holds a field to 128 KiB by default; a landing value may be longer
CSV_FIELD_LIMIT = 1 << 24


@dataclass(frozen=True)
class Unparsed:
    """A CSV record that cannot be a row of the contract's columns; it is quarantined."""

    source_row: int  # 1-based record number, as the fast reader numbers rows
    reason: str  # malformed_row | bad_encoding
    detail: str
    text: str  # the record's lines as they arrived, bytes that are not UTF-8 as \xNN


@dataclass(frozen=True)
class TolerantBatch:
    """Up to a batch of a CSV file's rows (the columns `landing_rows` gives) and the records
    among them that could not be parsed."""

    rows: pl.DataFrame
    unparsed: list[Unparsed]


def _recording(lines: Iterator[str], consumed: list[str]) -> Iterator[str]:
    """Pass lines through to the csv reader, keeping those of the record being read."""
    for line in lines:
        consumed.append(line)
        yield line


def _as_arrived(text: str) -> str:
    """A record's text for the quarantine: undecodable bytes shown as \\xNN, no line end."""
    return (
        text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").rstrip("\r\n")
    )


def _not_utf8(fields: list[str], header: list[str]) -> str:
    """Why a record's fields are not UTF-8, naming the column and the first bad byte."""
    for name, value in zip(header, fields, strict=False):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            byte = ord(value[exc.start]) - 0xDC00
            return f"column {name!r} holds byte 0x{byte:02x}, which is not UTF-8"
    return "a value is not UTF-8"


def read_csv_tolerantly(
    path: Path, contract: TableContract, source_file: str, batch_rows: int = 250_000
) -> Iterator[TolerantBatch]:
    """Read a CSV landing file record by record with Python's csv module, for a file that the
    fast reader refused: the rows it can hold, numbered and valued as `landing_rows` does
    (empty strings and blank lines are nulls, missing trailing fields are nulls), and the
    records it cannot, as `Unparsed`. Slower than Polars; only used for such files.

    Raises:
        ContractError: a quoted value is never closed (the rest of the file would be one
            value), or the header breaks a file-level rule.
    """
    _, _, mapping = scan_checked(path, contract, source_file)
    csv.field_size_limit(CSV_FIELD_LIMIT)  # process-wide; only ever raised
    consumed: list[str] = []
    with (
        open_bytes(path) as raw,
        io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="") as text,
    ):
        reader = csv.reader(_recording(text, consumed), strict=True)
        header = next(reader)
        missing = [name for name in mapping.values() if name not in header]
        if missing:
            raise ContractError(
                source_file, "readable", f"cannot be parsed: header columns {missing} not found"
            )
        width = len(header)
        positions = [
            (c, header.index(mapping[c]) if c in mapping else None) for c in contract.column_names
        ]
        values: dict[str, list[str | None]] = {c: [] for c in contract.column_names}
        rows: list[int] = []
        unparsed: list[Unparsed] = []
        record = 0
        while True:
            consumed.clear()
            first_line = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                if "unexpected end of data" in str(exc):
                    raise ContractError(
                        source_file,
                        "readable",
                        f"cannot be parsed: a quoted value that starts on line {first_line} "
                        "of the file is never closed",
                    ) from exc
                record += 1
                unparsed.append(
                    Unparsed(
                        record,
                        "malformed_row",
                        f"line {first_line} of the file is not valid CSV: {exc}",
                        _as_arrived("".join(consumed)),
                    )
                )
                continue
            record += 1
            problem = None
            joined = "".join(consumed)
            if len(fields) > width:
                problem = (
                    "malformed_row",
                    f"line {first_line} of the file has {len(fields)} fields where the header "
                    f"has {width} (a delimiter inside an unquoted value?)",
                )
            elif not joined.isascii() and not _encodes(joined):
                problem = (
                    "bad_encoding",
                    f"line {first_line} of the file: {_not_utf8(fields, header)} "
                    "(save the file as UTF-8)",
                )
            if problem is not None:
                unparsed.append(Unparsed(record, *problem, _as_arrived(joined)))
                continue
            rows.append(record)
            for column, position in positions:
                value = (
                    fields[position] if position is not None and position < len(fields) else None
                )
                values[column].append(value or None)
            if len(rows) >= batch_rows:
                yield _tolerant_batch(rows, values, unparsed)
                rows, unparsed = [], []
                values = {c: [] for c in contract.column_names}
        if rows or unparsed:
            yield _tolerant_batch(rows, values, unparsed)


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _tolerant_batch(
    rows: list[int], values: dict[str, list[str | None]], unparsed: list[Unparsed]
) -> TolerantBatch:
    frame = pl.DataFrame(
        {
            "source_row": pl.Series(rows, dtype=pl.Int64),
            **{c: pl.Series(v, dtype=pl.String) for c, v in values.items()},
        }
    )
    return TolerantBatch(frame, list(unparsed))
