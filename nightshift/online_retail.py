"""Adapter for the UCI Online Retail data sets: the original (2010-2011) and Online Retail II.

The two layouts differ only in column names:

| original    | II          | contract            |
|-------------|-------------|---------------------|
| InvoiceNo   | Invoice     | orders.order_id     |
| StockCode   | StockCode   | orders.sku          |
| Description | Description | products.name       |
| Quantity    | Quantity    | orders.quantity     |
| InvoiceDate | InvoiceDate | orders.ordered_at   |
| UnitPrice   | Price       | orders.unit_price   |
| CustomerID  | Customer ID | orders.customer_id  |
| Country     | Country     | orders.country      |

The adapter rewrites a source file as contract landing files and leaves every judgement to
ingest, so the source's rows are accounted for exactly: row n of `landing/orders/<stem>`
is row n of the source. Mapping rules:

- 'C' invoices are cancellations: their negative quantities are returns.
- `line_no` numbers the distinct lines of an invoice in file order; an exact duplicate line
  gets the number of its first copy, so ingest counts it as a duplicate, not a conflict.
- InvoiceDate is UK local time (Europe/London) and is written as UTC with its offset.
- CustomerID is a float in the original file (17850.0) and is written as text (17850).
- A CSV that is not UTF-8 is read as Windows-1252 (`scan_csv_any_encoding`).
- The product catalogue is derived from the lines of every Online Retail file mapped into
  the landing folder, so files mapped one after the other (yearly exports, sheets saved as
  CSV) share one catalogue, `landing/products/online_retail.parquet`, instead of two that
  disagree on every product they both sell (1,294 key conflicts for the original file
  split in two). A workbook is one file: its sheets are read one after the other.
  Each file's catalogue lines are kept in `landing/online_retail/<stem>.parquet` (not a
  contract table, so ingest does not read them). Name is the most frequent description,
  category comes from keywords in it (`CATEGORY_KEYWORDS`, else 'other'), list_price is the
  median price of its sales (lines with a positive quantity and price), else of its returns,
  else 0; unit_cost is unknown (features apply the configured share); active means a sale
  in the last `active_window_days` of the data. Non-product codes (postage,
  fees, manual adjustments, vouchers: see settings) get no product and are quarantined as
  `non_product_sku` by ingest. No inventory is derived here; features apply the default cover.
"""

from __future__ import annotations

import codecs
import io
import logging
import re
from collections.abc import Callable
from pathlib import Path

import polars as pl

from nightshift.errors import ContractError
from nightshift.files import gzip_damage_named, open_bytes, written_atomically

SOURCE_TIMEZONE = "Europe/London"
CATALOGUE_LINES_DIR = "online_retail"  # under landing/: what each file's catalogue came from
CATALOGUE_FILE = "online_retail.parquet"  # under landing/products/: one for every file

LAYOUTS: dict[str, dict[str, str]] = {
    "original": {
        "InvoiceNo": "invoice",
        "StockCode": "stock_code",
        "Description": "description",
        "Quantity": "quantity",
        "InvoiceDate": "invoice_date",
        "UnitPrice": "price",
        "CustomerID": "customer",
        "Country": "country",
    },
    "ii": {
        "Invoice": "invoice",
        "StockCode": "stock_code",
        "Description": "description",
        "Quantity": "quantity",
        "InvoiceDate": "invoice_date",
        "Price": "price",
        "Customer ID": "customer",
        "Country": "country",
    },
}

CATEGORY_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("christmas", r"CHRISTMAS|XMAS|ADVENT|SANTA|REINDEER|SNOWFLAKE|NATIVITY"),
    ("bags", r"\bBAGS?\b|TOTE|PURSE|SHOPPER"),
    ("candles_and_lights", r"CANDLE|T-LIGHT|TEA LIGHT|LANTERN|LIGHTS?\b|NIGHTLIGHT"),
    ("kitchen", r"MUG|CUP|PLATE|BOWL|CAKE|BAKING|JAR|LUNCH|BOTTLE|SPOON|NAPKIN|TEAPOT|TRAY"),
    ("stationery", r"CARD|WRAP|PAPER|NOTEBOOK|PENCIL|\bPEN\b|STICKER|ENVELOPE|TAPE|CALENDAR"),
    ("home_decor", r"SIGN|FRAME|CLOCK|HEART|MIRROR|CUSHION|DOORMAT|HOOK|DECORATION|ORNAMENT|VASE"),
    ("toys_and_games", r"\bTOY|GAME|DOLL|PUZZLE|PLAYING|SKIPPING|SPACEBOY|DOMINOES"),
    ("garden", r"GARDEN|PLANT|FLOWER|\bPOT\b|WATERING|BIRD"),
    ("accessories", r"NECKLACE|BRACELET|EARRING|\bRING\b|HAIR|UMBRELLA|SCARF|WALLET"),
)
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
TIMESTAMP_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S")


def detect_layout(source_file: str, columns: list[str]) -> dict[str, str]:
    """The column mapping for the file's layout, or a ContractError naming what is missing."""
    present = set(columns)
    for mapping in LAYOUTS.values():
        if set(mapping) <= present:
            return mapping
    closest = min(LAYOUTS.values(), key=lambda m: len(set(m) - present))
    missing = sorted(set(closest) - present)
    raise ContractError(
        source_file,
        "required_column",
        f"not an Online Retail file: missing {', '.join(missing)} "
        "(expected InvoiceNo/UnitPrice/CustomerID or Invoice/Price/Customer ID)",
    )


def scan_online_retail(path: Path) -> pl.LazyFrame:
    """Scan a Parquet, CSV or Excel file of either layout, with columns renamed to neutral
    names. An Excel workbook is read whole: UCI ships Online Retail II as one .xlsx with a
    sheet per year, and its rows are the sheets' rows in sheet order."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        lazy = pl.scan_parquet(path, glob=False)
    elif suffix == ".csv" or path.name.lower().endswith(".csv.gz"):
        lazy = scan_csv_any_encoding(path)
    elif suffix in EXCEL_SUFFIXES:
        lazy = read_workbook(path).lazy()
    else:
        raise ContractError(
            path.name,
            "readable",
            "use a .parquet, .csv (or .csv.gz) or .xlsx file (the layouts UCI ships)",
        )
    mapping = detect_layout(path.name, lazy.collect_schema().names())
    return lazy.select([pl.col(src).alias(dst) for src, dst in mapping.items()])


def is_utf8(path: Path, chunk_size: int = 1 << 24) -> bool:
    """Whether a file's bytes are UTF-8, read in chunks."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open_bytes(path) as handle:
            for chunk in iter(lambda: handle.read(chunk_size), b""):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def scan_csv_any_encoding(path: Path) -> pl.LazyFrame:
    """A CSV export as text. Exports of Online Retail are often Windows-1252, not UTF-8
    (Excel's 'CSV' and the widely copied Kaggle file: '£' is byte 0xA3), and reading them as
    UTF-8 with replacement would turn the pound signs in descriptions into U+FFFD. So a file
    that is not UTF-8 is decoded as Windows-1252 (Latin-1 where Windows-1252 leaves a byte
    undefined), in memory: these files are tens of MB."""
    if is_utf8(path):
        return pl.scan_csv(path, infer_schema=False, glob=False)
    with open_bytes(path) as handle:
        raw = handle.read()
    try:
        text, encoding = raw.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:
        text, encoding = raw.decode("latin-1"), "Latin-1"
    logging.getLogger(__name__).warning("%s is not UTF-8: read as %s", path.name, encoding)
    return pl.read_csv(io.BytesIO(text.encode()), infer_schema=False).lazy()


def read_workbook(path: Path) -> pl.DataFrame:
    """Every sheet of an Excel workbook, one after another (column types relaxed to what
    the sheets share, e.g. a customer id column that is empty in one sheet)."""
    try:
        sheets = pl.read_excel(path, sheet_id=0, engine="calamine")
    except Exception as exc:  # fastexcel raises its own types for damaged or locked files
        raise ContractError(path.name, "readable", f"not a readable workbook: {exc}") from exc
    frames = [frame for frame in sheets.values() if frame.width]
    if not frames:
        raise ContractError(path.name, "non_empty", "the workbook has no data rows")
    return pl.concat(frames, how="diagonal_relaxed")


def as_utc_text(column: str, dtype: pl.DataType) -> pl.Expr:
    """Local invoice times as UTC text with offset; unparseable text is kept for quarantine."""
    col = pl.col(column)
    if isinstance(dtype, pl.Datetime):
        parsed = col
    elif dtype == pl.Date:
        parsed = col.cast(pl.Datetime("us"))
    else:
        text = col.cast(pl.String).str.strip_chars()
        parsed = pl.coalesce(
            [text.str.to_datetime(fmt, strict=False, time_unit="us") for fmt in TIMESTAMP_FORMATS]
        )
    utc = parsed.dt.replace_time_zone(
        SOURCE_TIMEZONE, ambiguous="earliest", non_existent="null"
    ).dt.convert_time_zone("UTC")
    rendered = utc.dt.strftime("%Y-%m-%d %H:%M:%S+00:00")
    return pl.coalesce([rendered, col.cast(pl.String)])


def customer_text(dtype: pl.DataType) -> pl.Expr:
    """Customer ids as text without a float's '.0'."""
    col = pl.col("customer")
    if dtype.is_float():
        return col.cast(pl.Int64, strict=False).cast(pl.String)
    return col.cast(pl.String).str.strip_chars().str.replace(r"\.0+$", "")


def line_numbers(lazy: pl.LazyFrame) -> pl.LazyFrame:
    """Number each invoice's distinct lines in file order; exact copies share a number."""
    content = [c for c in lazy.collect_schema().names() if c != "_row"]
    return lazy.with_columns(pl.col("_row").min().over(content).alias("_first_copy")).with_columns(
        pl.col("_first_copy").rank("dense").over("invoice").cast(pl.Int64).alias("line_no")
    )


def to_orders(lazy: pl.LazyFrame) -> pl.LazyFrame:
    """Contract orders, one row per source row, in source order."""
    schema = lazy.collect_schema()
    return (
        lazy.with_row_index("_row")
        .pipe(line_numbers)
        .sort("_row")
        .select(
            pl.col("invoice").cast(pl.String).str.strip_chars().alias("order_id"),
            pl.col("line_no"),
            customer_text(schema["customer"]).alias("customer_id"),
            pl.col("stock_code").cast(pl.String).str.strip_chars().alias("sku"),
            pl.col("quantity").alias("quantity"),
            pl.col("price").alias("unit_price"),
            as_utc_text("invoice_date", schema["invoice_date"]).alias("ordered_at"),
            pl.col("country").cast(pl.String).alias("country"),
            pl.lit(None, dtype=pl.String).alias("channel"),
        )
    )


def category_of(description: pl.Expr) -> pl.Expr:
    """A category from keywords in the description (first rule that matches), else 'other'."""
    upper = description.str.to_uppercase()
    expr = pl.lit("other")
    for name, pattern in reversed(CATEGORY_KEYWORDS):
        expr = pl.when(upper.str.contains(pattern)).then(pl.lit(name)).otherwise(expr)
    return expr


def catalogue_lines(lazy: pl.LazyFrame) -> pl.LazyFrame:
    """What the catalogue is derived from, per source line, in types every file shares:
    sku, description, quantity, price and the (UTC) day."""
    schema = lazy.collect_schema()
    return lazy.select(
        pl.col("stock_code").cast(pl.String).str.strip_chars().alias("sku"),
        pl.col("description").cast(pl.String).str.strip_chars().alias("description"),
        pl.col("quantity").cast(pl.Float64, strict=False).alias("quantity"),
        pl.col("price").cast(pl.Float64, strict=False).alias("price"),
        as_utc_text("invoice_date", schema["invoice_date"])
        .str.slice(0, 10)
        .str.to_date(strict=False)
        .alias("day"),
    )


def to_products(
    lines: pl.LazyFrame, non_product_pattern: str, active_window_days: int
) -> pl.LazyFrame:
    """A catalogue derived from `catalogue_lines`: one row per product code seen.

    The same rules as sql/staging/stg_products_derived.sql: a sale is a line with a positive
    quantity and price (a giveaway or a stock write-off is not one); list_price is the
    median sale price, else the median price it was returned at, else 0 (never priced)."""
    pattern = "^(?:" + non_product_pattern + ")$"  # full match, as ingest's rule applies it
    lines = lines.filter(pl.col("sku").is_not_null() & ~pl.col("sku").str.contains(pattern))
    last_day = pl.col("day").max()
    priced = pl.col("price") > 0
    sold, returned = priced & (pl.col("quantity") > 0), priced & (pl.col("quantity") < 0)
    return (
        lines.with_columns(last_day.alias("_end"))
        .group_by("sku")
        .agg(
            pl.col("description").drop_nulls().mode().sort().first().alias("name"),
            pl.coalesce(
                pl.col("price").filter(sold).median(), pl.col("price").filter(returned).median()
            ).alias("list_price"),
            (
                pl.col("day").filter(sold).max()
                > pl.col("_end").first() - pl.duration(days=active_window_days)
            ).alias("active"),
        )
        .with_columns(
            category_of(pl.col("name").fill_null("")).alias("category"),
            pl.col("list_price").fill_null(0.0).round(4),
            pl.col("active").fill_null(False),
            pl.lit(None, dtype=pl.Float64).alias("unit_cost"),
        )
        .select("sku", "name", "category", "unit_cost", "list_price", "active")
        .sort("sku")
    )


def write_landing_files(
    path: Path,
    landing_dir: Path,
    non_product_pattern: str,
    active_window_days: int,
    check_catalogue: Callable[[pl.DataFrame, str], None] | None = None,
) -> tuple[Path, Path]:
    """Rewrite an Online Retail file as landing/orders/<stem>.parquet, and derive the one
    catalogue, landing/products/online_retail.parquet, from it and every file mapped before.

    `check_catalogue(catalogue, orders_file)` may refuse the derived catalogue before
    anything is written (`orders_file` as ingest names it, e.g. orders/<stem>.parquet).
    The orders land last: a mapping interrupted after them but before the catalogue left
    orders whose new products the landed catalogue lacked, and the next night quarantined
    them as unknown_sku. A catalogue ahead of its orders does no harm."""
    if not path.is_file():
        raise ContractError(str(path), "readable", "no such file")
    name = path.name[: -len(".gz")] if path.name.lower().endswith(".gz") else path.name
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(name).stem)
    orders_path = landing_dir / "orders" / f"{stem}.parquet"
    lines_dir = landing_dir / CATALOGUE_LINES_DIR
    products_path = landing_dir / "products" / CATALOGUE_FILE
    for folder in (orders_path.parent, lines_dir, products_path.parent):
        folder.mkdir(parents=True, exist_ok=True)
    with gzip_damage_named(path, path.name):
        lazy = scan_online_retail(path)
        orders = to_orders(lazy).collect()
        lines = catalogue_lines(lazy).collect()
    if orders.height == 0:
        raise ContractError(path.name, "non_empty", "the file has no data rows")
    lines_path = lines_dir / f"{stem}.parquet"
    earlier = sorted(p for p in lines_dir.glob("*.parquet") if p != lines_path)
    every_file = pl.concat([*(pl.scan_parquet(p) for p in earlier), lines.lazy()])
    catalogue = to_products(every_file, non_product_pattern, active_window_days).collect()
    if check_catalogue is not None:
        check_catalogue(catalogue, f"orders/{orders_path.name}")
    write_atomically(lines, lines_path)
    write_atomically(catalogue, products_path)
    write_atomically(orders, orders_path)
    return orders_path, products_path


def write_atomically(frame: pl.DataFrame, path: Path) -> None:
    """Write a landing file whole or not at all (written_atomically), so an interrupted
    mapping never leaves a half-written landing file for the next ingest to load."""
    with written_atomically(path) as partial:
        frame.write_parquet(partial)
