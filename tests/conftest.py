"""Shared fixtures: a `tiny` synthetic shop generated once, copied into a fresh home per test."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from nightshift.generator import generate_shop
from nightshift.settings import Settings, load_settings

# The suite must not read the shell it runs in: a developer's NIGHTSHIFT_HOME or MLflow
# server would otherwise receive the tests' runs (tests set what they need themselves).
for _name in [n for n in os.environ if n.startswith("NIGHTSHIFT_") or n == "MLFLOW_TRACKING_URI"]:
    del os.environ[_name]

TINY_END = date(2024, 6, 30)
TINY_SEED = 7


@pytest.fixture(scope="session")
def tiny_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated `tiny` shop: landing/ and truth/ under one folder. Do not modify."""
    root = tmp_path_factory.mktemp("tiny_shop")
    generate_shop("tiny", root / "landing", seed=TINY_SEED, end=TINY_END)
    return root


@pytest.fixture
def tiny_home(tmp_path: Path, tiny_shop: Path) -> Path:
    """A fresh NIGHTSHIFT_HOME holding a copy of the tiny shop's landing files and truth."""
    home = tmp_path / "home"
    shutil.copytree(tiny_shop / "landing", home / "landing")
    shutil.copytree(tiny_shop / "truth", home / "truth")
    return home


def settings_at(home: Path, **overrides: object) -> Settings:
    return load_settings(home=home, **overrides)


def planted_counts(home: Path) -> dict[str, dict[str, int]]:
    return json.loads((home / "truth" / "dirty_counts.json").read_text())


def table_checksum(
    con: duckdb.DuckDBPyConnection, table: str, exclude: tuple[str, ...] = ()
) -> str:
    """An order-independent checksum of a table's content (optionally without some columns)."""
    columns = [
        row[0]
        for row in con.execute(
            "select column_name from duckdb_columns() where schema_name || '.' || table_name = $t",
            {"t": table},
        ).fetchall()
        if row[0] not in exclude
    ]
    rel = con.table(table).select(*columns)
    rows = sorted(repr(r) for r in rel.fetchall())
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


@pytest.fixture(scope="session")
def small_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `small` shop (5,000 customers, 500 SKUs, 730 days) ingested with features as of
    TINY_END: the tiny profile's 180 days are too short for lapsed customers or elasticity
    to show. About 25 s, once per session. Do not modify."""
    from tasks.features import build_features
    from tasks.ingest import ingest_landing

    home = tmp_path_factory.mktemp("small_home")
    generate_shop("small", home / "landing", seed=TINY_SEED, end=TINY_END)
    settings = load_settings(home=home)
    ingest_landing.fn(settings, "small-fixture")
    build_features.fn(settings, TINY_END)
    return home


def process_ended(pid: int, timeout: float = 0) -> bool:
    """Whether process `pid` has ended (or is a zombie waiting to be reaped), waiting up to
    `timeout` seconds for it."""
    import psutil

    deadline = time.monotonic() + timeout
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
