"""The Online Retail adapter: both layouts, exact accounting on the real file."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from nightshift.errors import ContractError
from nightshift.online_retail import (
    LAYOUTS,
    line_numbers,
    scan_online_retail,
    to_products,
    write_landing_files,
)
from nightshift.settings import DEFAULT_NON_PRODUCT_SKU_PATTERN
from nightshift.warehouse import open_warehouse
from tasks.ingest import ingest_landing
from tests.conftest import settings_at

REAL_FILE = Path(__file__).resolve().parents[3] / "shared" / "data" / "online_retail.parquet"
needs_real_file = pytest.mark.skipif(not REAL_FILE.exists(), reason=f"{REAL_FILE} not present")


def ingest_file(home: Path, path: Path):
    settings = settings_at(home)
    write_landing_files(
        path, settings.landing_dir, settings.non_product_sku_pattern, settings.active_window_days
    )
    return ingest_landing.fn(settings, "run-or")


def independent_counts(path: Path) -> dict[str, int]:
    """What ingest must find, counted straight from the source file with DuckDB."""
    con = duckdb.connect()
    params = {"path": str(path), "pattern": DEFAULT_NON_PRODUCT_SKU_PATTERN}
    return dict(
        zip(
            (
                "rows_in",
                "rows_duplicate",
                "non_product_sku",
                "stock_adjustment",
                "rows_staged",
                "customers",
                "skus",
            ),
            con.execute(
                """
                with src as (select * from read_parquet($path)),
                uniq as (select distinct * from src),
                judged as (
                    select *,
                        regexp_full_match(StockCode, $pattern) as non_product,
                        not regexp_full_match(StockCode, $pattern) and UnitPrice = 0 and CustomerID is null as adjustment
                    from uniq
                )
                select
                    (select count(*) from src),
                    (select count(*) from src) - (select count(*) from uniq),
                    count(*) filter (where non_product),
                    count(*) filter (where adjustment),
                    count(*) filter (where not non_product and not adjustment),
                    count(distinct CustomerID) filter (where not non_product and not adjustment),
                    count(distinct StockCode) filter (where not non_product and not adjustment)
                from judged
                """,
                params,
            ).fetchone(),
            strict=True,
        )
    )


@needs_real_file
def test_the_real_file_ingests_with_exact_accounting(tmp_path: Path) -> None:
    expected = independent_counts(REAL_FILE)
    assert (
        expected["rows_in"] == 541_909 and expected["rows_duplicate"] == 5_268
    )  # the README's figures
    summary = ingest_file(tmp_path, REAL_FILE)
    orders = summary.audit["orders"]
    assert orders["rows_in"] == expected["rows_in"]
    assert orders["rows_duplicate"] == expected["rows_duplicate"]
    assert orders["rows_staged"] == expected["rows_staged"]
    assert summary.quarantined_by_reason["orders"] == {
        "non_product_sku": expected["non_product_sku"],
        "stock_adjustment": expected["stock_adjustment"],
    }
    assert (
        orders["rows_in"]
        == orders["rows_staged"] + orders["rows_quarantined"] + orders["rows_duplicate"]
    )
    assert (summary.orders_first_date, summary.orders_last_date) == ("2010-12-01", "2011-12-09")
    assert (summary.customers, summary.skus) == (expected["customers"], expected["skus"])
    with open_warehouse(settings_at(tmp_path), read_only=True) as con:
        returns, first = con.execute(
            "select count(*) filter (where order_id like 'C%' and quantity < 0), "
            "min_by(customer_id || ' ' || sku || ' ' || quantity || ' ' || unit_price, source_row) "
            "from staging.stg_orders"
        ).fetchone()
        catalogue = con.execute(
            "select count(*), count(*) filter (where unit_cost is null) from staging.stg_products"
        ).fetchone()
    assert returns > 8_000  # cancellations are kept as returns, not quarantined
    assert first == "17850 85123A 6 2.5500"  # row 1 of the file, mapped as the README states
    assert catalogue[0] == catalogue[1] > 3_000  # derived catalogue, cost unknown


def sample(tmp_path: Path, rows: int = 400) -> pl.DataFrame:
    if REAL_FILE.exists():
        return pl.read_parquet(REAL_FILE, n_rows=rows)
    pytest.skip("real file not present")


def test_both_layouts_give_the_same_result(tmp_path: Path) -> None:
    original = sample(tmp_path)
    original_path = tmp_path / "original.parquet"
    original.write_parquet(original_path)
    rename = {old: new for old, new in zip(LAYOUTS["original"], LAYOUTS["ii"], strict=True)}
    ii_path = tmp_path / "online_retail_ii.csv"
    original.rename(rename).with_columns(
        pl.col("InvoiceDate").dt.strftime("%Y-%m-%d %H:%M:%S")
    ).write_csv(ii_path)
    a = ingest_file(tmp_path / "a", original_path)
    b = ingest_file(tmp_path / "b", ii_path)
    assert a.audit == b.audit
    with (
        open_warehouse(settings_at(tmp_path / "a"), read_only=True) as ca,
        open_warehouse(settings_at(tmp_path / "b"), read_only=True) as cb,
    ):
        query = "select order_id, line_no, customer_id, sku, quantity, unit_price, ordered_at from staging.stg_orders order by all"
        assert ca.execute(query).fetchall() == cb.execute(query).fetchall()


def test_uk_local_times_become_utc_instants(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "InvoiceNo": ["1", "2"],
            "StockCode": ["10001", "10001"],
            "Description": ["MUG", "MUG"],
            "Quantity": [1, 1],
            "InvoiceDate": ["2011-07-01 10:00:00", "2011-01-10 10:00:00"],
            "UnitPrice": [1.0, 1.0],
            "CustomerID": [12346.0, None],
            "Country": ["United Kingdom", "France"],
        }
    )
    path = tmp_path / "retail.csv"
    frame.write_csv(path)
    orders = pl.read_parquet(
        write_landing_files(path, tmp_path / "landing", DEFAULT_NON_PRODUCT_SKU_PATTERN, 90)[0]
    )
    assert orders["ordered_at"].to_list() == [
        "2011-07-01 09:00:00+00:00",
        "2011-01-10 10:00:00+00:00",
    ]
    assert orders["customer_id"].to_list() == ["12346", None]


@pytest.mark.parametrize("name", ["retail.csv", "retail.csv.gz"])
def test_a_windows_1252_export_keeps_its_pound_signs(tmp_path: Path, name: str) -> None:
    """Excel's CSV and the Kaggle copy of Online Retail are Windows-1252: '£' is byte 0xA3,
    which a UTF-8 read (with replacement) turned into U+FFFD. Gzipped, it reads the same."""
    header = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
    lines = [
        header,
        "1,10001,GIFT VOUCHER £10,1,2011-07-01 10:00:00,10.0,12346,United Kingdom",
        "2,10002,MUG,1,2011-07-01 10:00:00,1.0,12346,United Kingdom",
    ]
    path = tmp_path / name
    data = "\r\n".join(lines).encode("cp1252")
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    orders_path, products_path = write_landing_files(
        path, tmp_path / "landing", DEFAULT_NON_PRODUCT_SKU_PATTERN, 90
    )
    assert orders_path.name == "retail.parquet"
    assert pl.read_parquet(orders_path).height == 2
    names = pl.read_parquet(products_path).sort("sku")["name"].to_list()
    assert names == ["GIFT VOUCHER £10", "MUG"]


def test_a_gzip_file_cut_short_is_refused_by_name(tmp_path: Path) -> None:
    """Python's gzip raises EOFError at a cut-short file's end, which the CLI (click) took
    for Ctrl-D: it printed "Aborted." and nothing else."""
    header = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
    lines = [header] + [
        f"{n},{10000 + n % 97},MUG {n % 97},1,2011-07-01 10:00:00,1.0,12346,United Kingdom"
        for n in range(20_000)
    ]
    packed = gzip.compress("\n".join(lines).encode(), mtime=0)
    path = tmp_path / "retail.csv.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(
        ContractError, match=r"^retail.csv.gz: cannot be read: its gzip data ends early"
    ):
        write_landing_files(path, tmp_path / "landing", DEFAULT_NON_PRODUCT_SKU_PATTERN, 90)
    assert not list((tmp_path / "landing").rglob("*.parquet"))


def test_exact_copies_share_a_line_number_and_distinct_lines_do_not() -> None:
    frame = pl.LazyFrame(
        {
            "invoice": ["9", "9", "9", "8"],
            "stock_code": ["A", "A", "B", "A"],
            "quantity": [1, 1, 1, 1],
            "_row": [0, 1, 2, 3],
        }
    )
    assert line_numbers(frame).collect()["line_no"].to_list() == [1, 1, 2, 1]


def test_a_file_of_another_layout_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    path.write_text("Invoice,StockCode,Quantity\n1,A,1\n")
    with pytest.raises(
        ContractError, match=r"sales.csv: not an Online Retail file: missing .*InvoiceDate"
    ):
        scan_online_retail(path)


def test_two_files_share_one_catalogue_as_one_file_would(tmp_path: Path) -> None:
    """The II set comes as two yearly sheets: mapped one after the other they give the
    catalogue of the whole data (median price over both years, active by the last day of
    either), not two catalogues that conflict on every product both years sold."""
    lines = sample(tmp_path, rows=6_000)
    cut = lines["InvoiceDate"].sort()[3_000]
    whole, first, second = tmp_path / "whole.parquet", tmp_path / "y1.csv", tmp_path / "y2.csv"
    lines.write_parquet(whole)
    for part, path in ((lines["InvoiceDate"] < cut, first), (lines["InvoiceDate"] >= cut, second)):
        lines.filter(part).with_columns(
            pl.col("InvoiceDate").dt.strftime("%Y-%m-%d %H:%M:%S")
        ).write_csv(path)
    ingest_file(tmp_path / "one", whole)
    ingest_file(tmp_path / "two", first)
    split = ingest_file(tmp_path / "two", second)

    assert "products" not in split.quarantined_by_reason
    products = (
        "select sku, name, category, list_price, active from staging.stg_products order by sku"
    )
    with (
        open_warehouse(settings_at(tmp_path / "one"), read_only=True) as one,
        open_warehouse(settings_at(tmp_path / "two"), read_only=True) as two,
    ):
        expected, got = one.execute(products).fetchall(), two.execute(products).fetchall()
        shared = two.execute(
            "select count(distinct sku) from staging.stg_orders where source_file = 'orders/y1.parquet' "
            "and sku in (select sku from staging.stg_orders where source_file = 'orders/y2.parquet')"
        ).fetchone()[0]
    assert shared > 100  # the two files sell many of the same products
    assert got == expected and len(got) > 1_000
    landing = tmp_path / "two" / "landing"
    assert sorted(p.name for p in (landing / "products").iterdir()) == ["online_retail.parquet"]


def test_a_catalogue_missing_the_products_of_files_mapped_before_is_refused(
    tmp_path: Path,
) -> None:
    """Each catalogue is derived from the catalogue lines of every file mapped so far
    (landing/online_retail/). Cleared with the loaded files, the next file's catalogue
    replaced the loaded one without the earlier products, and their order lines were
    quarantined as unknown_sku. The mapping is now refused, writing nothing, until the
    earlier file is mapped again."""
    from nightshift.errors import ContractError
    from tasks.landing import map_online_retail

    lines = sample(tmp_path, rows=6_000)
    cut = lines["InvoiceDate"].sort()[3_000]
    first, second = tmp_path / "y1.parquet", tmp_path / "y2.parquet"
    lines.filter(pl.col("InvoiceDate") < cut).write_parquet(first)
    lines.filter(pl.col("InvoiceDate") >= cut).write_parquet(second)
    home = tmp_path / "home"
    settings = settings_at(home)
    map_online_retail.fn(settings, first)
    loaded = ingest_landing.fn(settings, "run-1")
    catalogue = home / "landing" / "products" / "online_retail.parquet"
    before = catalogue.read_bytes()

    shutil.rmtree(home / "landing" / "online_retail")  # cleared with the loaded files
    with pytest.raises(ContractError, match=r"lacks [\d,]+ products that loaded orders sell .*"
                       r"orders/y1\.parquet.*\(rule: keeps_sold_products\)"):  # fmt: skip
        map_online_retail.fn(settings, second)
    assert catalogue.read_bytes() == before
    assert sorted(p.name for p in (home / "landing" / "orders").iterdir()) == ["y1.parquet"]
    assert list((home / "landing" / "online_retail").iterdir()) == []

    map_online_retail.fn(settings, first)  # its catalogue lines again
    map_online_retail.fn(settings, second)
    both = ingest_landing.fn(settings, "run-2")
    assert "unknown_sku" not in both.quarantined_by_reason.get("orders", {})
    assert both.audit["orders"]["rows_staged"] > loaded.audit["orders"]["rows_staged"]


def test_the_ii_workbook_is_read_sheet_after_sheet(tmp_path: Path) -> None:
    """UCI ships Online Retail II as an .xlsx with a sheet per year, and the sheets overlap
    by a few days: the workbook ingests as the CSV of its sheets one after the other, and a
    line in both sheets counts once, as a duplicate."""
    import xlsxwriter

    rename = {old: new for old, new in zip(LAYOUTS["original"], LAYOUTS["ii"], strict=True)}
    lines = sample(tmp_path, rows=1_000).rename(rename)
    dates = lines["InvoiceDate"].sort()
    first = lines.filter(pl.col("InvoiceDate") < dates[600])
    second = lines.filter(pl.col("InvoiceDate") >= dates[500])  # some lines in both sheets
    workbook = tmp_path / "online_retail_II.xlsx"
    with xlsxwriter.Workbook(workbook) as book:
        for name, sheet in (("Year 2009-2010", first), ("Year 2010-2011", second)):
            sheet.write_excel(
                workbook=book, worksheet=name, dtype_formats={pl.Datetime: "yyyy-mm-dd hh:mm:ss"}
            )
    both = tmp_path / "online_retail_II.csv"
    pl.concat([first, second]).with_columns(
        pl.col("InvoiceDate").dt.strftime("%Y-%m-%d %H:%M:%S")
    ).write_csv(both)

    from_excel = ingest_file(tmp_path / "xlsx", workbook)
    from_csv = ingest_file(tmp_path / "csv", both)
    assert from_excel.audit == from_csv.audit
    orders = from_excel.audit["orders"]
    assert orders["rows_in"] == first.height + second.height
    overlap = first.filter(pl.col("InvoiceDate") >= dates[500]).height
    assert overlap > 20 and orders["rows_duplicate"] >= overlap
    query = (
        "select order_id, line_no, customer_id, sku, quantity, unit_price, ordered_at, "
        "source_row from staging.stg_orders order by all"
    )
    with (
        open_warehouse(settings_at(tmp_path / "xlsx"), read_only=True) as xlsx,
        open_warehouse(settings_at(tmp_path / "csv"), read_only=True) as csv,
    ):
        assert xlsx.execute(query).fetchall() == csv.execute(query).fetchall()


def test_catalogue_categories_come_from_descriptions(tmp_path: Path) -> None:
    from nightshift.online_retail import category_of

    names = pl.Series(
        [
            "WHITE HANGING HEART T-LIGHT HOLDER",
            "JUMBO BAG RED RETROSPOT",
            "PARTY BUNTING",
            "CHRISTMAS LIGHTS",
        ]
    )
    assert pl.select(category_of(pl.lit(names))).to_series().to_list() == [
        "candles_and_lights", "bags", "other", "christmas",
    ]  # fmt: skip


def test_a_catalogue_prices_products_by_their_sales_then_returns_in_both_derivations(
    tmp_path: Path,
) -> None:
    """A product's list price is its median sale price, else the price it was returned at
    (returned stock had one), else 0; only a sale at a price makes it active. The adapter's
    catalogue (Polars) and ingest's own, when no catalogue landed (SQL), agree."""
    lines = [  # sku, quantity, price, day
        ("SOLD", 2, 3.0, "2024-01-10"), ("SOLD", 1, 5.0, "2024-03-01"),
        ("SOLD", 1, 0.0, "2024-03-20"),  # a giveaway: not a sale, not a price
        ("RETURNED", -1, 4.95, "2024-03-25"), ("RETURNED", -2, 5.95, "2024-03-26"),
        ("GIFT", 5, 0.0, "2024-03-30"),  # only ever given away: sold recently, never priced
    ]  # fmt: skip
    expected = [("GIFT", 0.0, False), ("RETURNED", 5.45, False), ("SOLD", 4.0, True)]

    frame = pl.DataFrame(
        lines, schema=["sku", "quantity", "price", "day"], orient="row"
    ).with_columns(pl.col("quantity").cast(pl.Float64), pl.col("day").str.to_date())
    adapter = to_products(
        frame.with_columns(description=pl.lit("MUG")).lazy(), DEFAULT_NON_PRODUCT_SKU_PATTERN, 30
    ).collect()
    assert adapter.select("sku", "list_price", "active").rows() == expected

    orders = tmp_path / "landing" / "orders" / "day.csv"
    orders.parent.mkdir(parents=True)
    orders.write_text(
        "order_id,line_no,customer_id,sku,quantity,unit_price,ordered_at,country,channel\n"
        + "".join(
            f"O{i},1,C1,{sku},{quantity},{price},{day} 10:00:00,UK,web\n"
            for i, (sku, quantity, price, day) in enumerate(lines)
        )
    )
    ingest_landing.fn(settings_at(tmp_path, active_window_days=30), "run-p")
    with open_warehouse(settings_at(tmp_path), read_only=True) as con:
        derived = con.execute(
            "select sku, cast(list_price as double), active from staging.stg_products order by sku"
        ).fetchall()
    assert derived == expected


def test_a_mapping_interrupted_before_its_catalogue_lands_no_orders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Orders that landed without the catalogue naming their products were quarantined as
    unknown_sku by the next night; the orders are now written last."""
    import nightshift.online_retail

    frame = pl.DataFrame(
        {
            "InvoiceNo": ["1"], "StockCode": ["10001"], "Description": ["MUG"], "Quantity": [1],
            "InvoiceDate": ["2011-07-01 10:00:00"], "UnitPrice": [1.0],
            "CustomerID": [12346.0], "Country": ["United Kingdom"],
        }
    )  # fmt: skip
    path = tmp_path / "retail.csv"
    frame.write_csv(path)
    real_write = nightshift.online_retail.write_atomically

    def disk_full_on_the_catalogue(frame: pl.DataFrame, target: Path) -> None:
        if target.parent.name == "products":
            raise OSError(28, "No space left on device")
        real_write(frame, target)

    monkeypatch.setattr(nightshift.online_retail, "write_atomically", disk_full_on_the_catalogue)
    with pytest.raises(OSError, match="No space left"):
        write_landing_files(path, tmp_path / "landing", DEFAULT_NON_PRODUCT_SKU_PATTERN, 90)
    assert list((tmp_path / "landing").glob("orders/*")) == []
