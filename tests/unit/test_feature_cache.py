"""The feature build is skipped on unchanged inputs, and only then; IO retries skip our own
errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
from prefect.states import Failed

from nightshift.errors import ContractError
from tasks.features import build_features
from tasks.ingest import ingest_landing
from tasks.retry import transient_only
from tests.conftest import TINY_END, settings_at, table_checksum


def build_state(home: Path) -> tuple[str, object, str]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        key, built_at = con.execute("select build_key, built_at from meta.feature_build").fetchone()
        return key, built_at, table_checksum(con, "features.fct_daily_demand")


def test_an_unchanged_rebuild_is_skipped_and_any_change_rebuilds(tiny_home: Path) -> None:
    settings = settings_at(tiny_home)
    digests = ingest_landing.fn(settings, "cache-1").input_digests
    defaults = build_features.fn(settings, TINY_END, digests)
    key, built_at, demand = build_state(tiny_home)

    # same as_of, same files, same settings and SQL: skipped, same answer
    assert build_features.fn(settings, TINY_END, digests) == defaults
    assert build_state(tiny_home) == (key, built_at, demand)

    # another as_of rebuilds (and changes the tables)
    build_features.fn(settings, TINY_END - timedelta(days=7), digests)
    other_key, other_built_at, other_demand = build_state(tiny_home)
    assert other_key != key and other_built_at > built_at and other_demand != demand

    # back to the first as_of: rebuilt, because the tables now hold the other night
    build_features.fn(settings, TINY_END, digests)
    assert build_state(tiny_home)[2] == demand

    # a changed landing file changes the digests and rebuilds
    with (tiny_home / "landing" / "products" / "synthetic_products.csv").open("a") as f:
        f.write("SKU-CACHE-1,CACHE TEST,candles,3.00,9.99,true\n")
    new_digests = ingest_landing.fn(settings, "cache-2").input_digests
    assert new_digests["products"] != digests["products"]
    before = build_state(tiny_home)[1]
    build_features.fn(settings, TINY_END, new_digests)
    assert build_state(tiny_home)[1] > before

    # a changed setting the SQL binds rebuilds too
    before = build_state(tiny_home)[1]
    build_features.fn(settings_at(tiny_home, default_cover_days=14), TINY_END, new_digests)
    assert build_state(tiny_home)[1] > before

    # so does the shop timezone, which moves business dates in staging and features
    before = build_state(tiny_home)[1]
    build_features.fn(settings_at(tiny_home, timezone="America/New_York"), TINY_END, new_digests)
    assert build_state(tiny_home)[1] > before


def test_io_retries_skip_our_own_errors() -> None:
    assert not transient_only(
        None, None, Failed(data=ContractError("orders/x.csv", "non_empty", "empty file"))
    )
    assert transient_only(None, None, Failed(data=OSError("database is locked")))
