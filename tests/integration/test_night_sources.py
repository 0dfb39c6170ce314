"""The nightly flow's `source`, `source_path` and `profile` parameters, as a run started from
the Prefect UI sets them: on a real Prefect harness, DuckDB files and MLflow store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flows.nightly import nightly
from nightshift.settings import DEFAULT_NON_PRODUCT_SKU_PATTERN
from nightshift.warehouse import open_warehouse
from tasks.landing import generate_shop_if_missing
from tests.conftest import TINY_END, settings_at
from tests.unit.test_online_retail import REAL_FILE

pytestmark = pytest.mark.integration


def digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_night_on_an_empty_home_generates_its_profile_first(
    prefect_api: None, tiny_shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(home))
    result = nightly(as_of=TINY_END, models=[], profile="tiny")
    assert result["status"] == "succeeded"
    # the generator's tiny shop for that end date and the default seed, file for file
    assert digests(home / "landing") == digests(tiny_shop / "landing")
    with open_warehouse(settings_at(home), read_only=True) as con:
        source, orders_in = con.execute(
            "select r.source, a.rows_in from meta.runs as r join meta.row_audit as a "
            "using (run_id) where a.table_name = 'orders'"
        ).fetchone()
    landed = sum(
        path.read_text().count("\n") - 1 for path in (home / "landing" / "orders").glob("*.csv")
    )
    assert source == "landing" and orders_in == landed > 7_000
    # once orders have landed, a profile never overwrites them
    before = digests(home / "landing")
    assert not generate_shop_if_missing.fn(settings_at(home), "small", TINY_END)
    assert digests(home / "landing") == before
    # nor mixes a shop into a home whose landing folder was cleared after loading
    (home / "landing").rename(tmp_path / "cleared")
    assert not generate_shop_if_missing.fn(settings_at(home), "small", TINY_END)
    assert not (home / "landing").exists()


@pytest.mark.skipif(not REAL_FILE.exists(), reason=f"{REAL_FILE} not present")
def test_a_night_maps_the_online_retail_file_its_parameters_name(
    prefect_api: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = pl.read_parquet(REAL_FILE, n_rows=3_000)
    path = tmp_path / "sales.parquet"
    lines.write_parquet(path)
    as_of = lines["InvoiceDate"].max().date()
    home = tmp_path / "home"
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(home))

    result = nightly(as_of=as_of, models=[], source="online-retail", source_path=str(path))
    assert result["status"] == "succeeded"
    with open_warehouse(settings_at(home), read_only=True) as con:
        source, orders_in = con.execute(
            "select r.source, a.rows_in from meta.runs as r join meta.row_audit as a "
            "using (run_id) where a.table_name = 'orders'"
        ).fetchone()
    assert source == f"online-retail:{path}" and orders_in == 3_000
    with open_warehouse(settings_at(home), read_only=True) as con:
        published = con.execute(
            "select orders from marts.kpi_daily where date = $d", {"d": as_of}
        ).fetchone()[0]
    # counted from the file: invoices with a product sold that day (not a fee, postage or
    # stock write-off line; December in London is UTC)
    ((expected,),) = duckdb.sql(
        "select count(distinct InvoiceNo) from read_parquet($path) "
        "where cast(InvoiceDate as date) = $d and Quantity > 0 "
        "and not regexp_full_match(StockCode, $pattern) "
        "and not (UnitPrice = 0 and CustomerID is null)",
        params={"path": str(path), "d": as_of, "pattern": DEFAULT_NON_PRODUCT_SKU_PATTERN},
    ).fetchall()
    assert published == expected > 100
