"""Ingest and cleaning (sql/staging): every row staged, quarantined with a reason, or a duplicate."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nightshift.errors import ContractError, NightshiftError
from nightshift.files import gzip_damage_named
from nightshift.generator import REASONS, DirtyMix, Profile, generate_shop
from nightshift.warehouse import open_warehouse
from tasks.ingest import ChangedFiles, StagingBuild, changed_archive_files, ingest_landing
from tests.conftest import planted_counts, settings_at, table_checksum

CHECKED_TABLES = (
    "staging.stg_orders", "staging.stg_events", "staging.stg_products", "staging.stg_inventory",
    "quarantine.rows", "meta.loaded_files", "meta.unparsed_rows",
)  # fmt: skip


def observed_counts(home: Path, run_id: str) -> dict[str, dict[str, int]]:
    """Quarantine counts by reason plus duplicates, per table, as ingest recorded them."""
    with open_warehouse(settings_at(home), read_only=True) as con:
        counts: dict[str, dict[str, int]] = {}
        for table, reason, n in con.execute(
            "select source_table, reason, count(*) from quarantine.rows group by all"
        ).fetchall():
            counts.setdefault(table, {})[reason] = n
        for table, dup in con.execute(
            "select table_name, rows_duplicate from meta.row_audit where run_id = $r", {"r": run_id}
        ).fetchall():
            if dup:
                counts.setdefault(table, {})["duplicate"] = dup
    return counts


def nonzero(counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {t: {r: n for r, n in v.items() if n} for t, v in counts.items() if any(v.values())}


def test_row_accounting_matches_planted_dirty_rows_exactly(tiny_home: Path, caplog) -> None:
    with caplog.at_level("INFO", logger="tasks.ingest"):
        summary = ingest_landing.fn(settings_at(tiny_home), "run-a")
    for audit in summary.audit.values():
        assert (
            audit["rows_in"]
            == audit["rows_staged"] + audit["rows_quarantined"] + audit["rows_duplicate"]
        )
    assert observed_counts(tiny_home, "run-a") == nonzero(planted_counts(tiny_home))
    clean = __import__("json").loads((tiny_home / "truth" / "world.json").read_text())["rows_clean"]
    assert {t: a["rows_staged"] for t, a in summary.audit.items()} == clean
    # the log says where judging's time went and the same accounting, table by table
    logged = caplog.messages
    assert any(m.startswith("staging: events judged in ") for m in logged)
    orders = summary.audit["orders"]
    assert (
        f"orders: {orders['rows_in']:,} rows in, {orders['rows_staged']:,} staged, "
        f"{orders['rows_quarantined']:,} quarantined, {orders['rows_duplicate']:,} duplicates"
    ) in logged


MICRO = Profile("micro", customers=40, skus=15, days=40, lines_target=500)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    counts=st.fixed_dictionaries(
        {
            table: st.fixed_dictionaries(
                {reason: st.integers(0, 4) for reason in (*reasons, "duplicate")}
            )
            for table, reasons in REASONS.items()
        }
    ),
)
def test_row_accounting_holds_for_random_dirty_mixes(tmp_path_factory, seed: int, counts) -> None:
    home = tmp_path_factory.mktemp("mix")
    result = generate_shop(
        MICRO, home / "landing", seed=seed, end=date(2024, 3, 31), dirty=DirtyMix(counts=counts)
    )
    summary = ingest_landing.fn(settings_at(home), "run-mix")
    for audit in summary.audit.values():
        assert (
            audit["rows_in"]
            == audit["rows_staged"] + audit["rows_quarantined"] + audit["rows_duplicate"]
        )
    assert observed_counts(home, "run-mix") == nonzero(result.dirty_counts)
    assert {t: a["rows_staged"] for t, a in summary.audit.items()} == result.rows_clean


def archived_rows(home: Path, source_file: str | None = None) -> pl.DataFrame:
    """The raw archive's current rows (of one landing file, or of all), as ingest recorded them."""
    with open_warehouse(settings_at(home), read_only=True) as con:
        files = con.execute(
            "select archive_file from meta.loaded_files where $f is null or source_file = $f "
            "order by source_file",  # the columns follow the first file's
            {"f": source_file},
        ).fetchall()
    return pl.concat(
        [pl.read_parquet(home / f).with_columns(pl.lit(f).alias("archive_file")) for (f,) in files],
        how="diagonal",
    ).sort("source_file", "source_row")


def warehouse_checksums(home: Path) -> dict[str, str]:
    with open_warehouse(settings_at(home), read_only=True) as con:
        checksums = {
            table: table_checksum(con, table, exclude=("load_id", "loaded_at", "run_id"))
            for table in CHECKED_TABLES
        }
    archive = archived_rows(home)
    checksums["raw archive"] = str(archive.hash_rows().sum())
    # the zero-row placeholders read when a table has no file (tasks/ingest.py) hold no row
    checksums["raw archive files"] = str(
        sorted(p.name for p in (home / "raw").rglob("*") if p.name != "_empty.parquet")
    )
    return checksums


def test_ingesting_the_same_files_twice_changes_no_table(tiny_home: Path) -> None:
    ingest_landing.fn(settings_at(tiny_home), "run-1")
    before = warehouse_checksums(tiny_home)
    second = ingest_landing.fn(settings_at(tiny_home), "run-2")
    assert second.files_loaded == []
    assert warehouse_checksums(tiny_home) == before
    # full_refresh reloads everything and still lands in the same state
    third = ingest_landing.fn(settings_at(tiny_home), "run-3", full_refresh=True)
    assert warehouse_checksums(tiny_home) == before
    # the unchanged rerun judged nothing again but still accounted for its run
    assert (second.staging_judged, third.staging_judged) == ("nothing", "all files")
    for table, audit in second.audit.items():
        assert audit == {**third.audit[table], "rows_new": 0}


def test_a_changed_staging_setting_judges_unchanged_files_again(tiny_home: Path) -> None:
    planted = planted_counts(tiny_home)["events"]["future_timestamp"]
    first = ingest_landing.fn(settings_at(tiny_home), "run-1")
    assert first.quarantined_by_reason["events"]["future_timestamp"] == planted
    # the planted future timestamps are 50 years ahead: a century's tolerance stages them
    lenient = settings_at(tiny_home, future_tolerance_hours=1_000_000)
    second = ingest_landing.fn(lenient, "run-2")
    assert second.files_loaded == []
    assert second.staging_judged == "all files"
    assert "future_timestamp" not in second.quarantined_by_reason["events"]
    assert second.audit["events"]["rows_staged"] == first.audit["events"]["rows_staged"] + planted
    # and back: the verdicts follow the settings, never a stale build
    third = ingest_landing.fn(settings_at(tiny_home), "run-3")
    assert third.staging_judged == "all files"
    assert third.quarantined_by_reason["events"]["future_timestamp"] == planted


def test_a_corrected_file_replaces_its_rows(tiny_home: Path) -> None:
    ingest_landing.fn(settings_at(tiny_home), "run-1")
    path = sorted((tiny_home / "landing" / "orders").glob("*.csv"))[2]
    original = pl.read_csv(path, infer_schema=False)
    corrected = original.head(original.height - 5).with_columns(pl.lit("1").alias("quantity"))
    corrected.write_csv(path)
    summary = ingest_landing.fn(settings_at(tiny_home), "run-2")
    assert summary.files_loaded == [f"orders/{path.name}"]
    raw = archived_rows(tiny_home, f"orders/{path.name}")
    assert (raw.height, raw.filter(pl.col("quantity") != "1").height) == (corrected.height, 0)
    assert raw["source_row"].to_list() == list(range(1, corrected.height + 1))
    # the replaced version's archive file is gone; one file per loaded landing file is left
    archive_files = sorted(p.name for p in (tiny_home / "raw" / "orders").glob("*.parquet"))
    assert [p for p in archive_files if p.startswith(path.name)] == [
        raw["archive_file"][0].split("/")[-1]
    ]
    assert summary.audit["orders"]["rows_new"] == corrected.height
    assert summary.staging_judged == "changed files"


def test_a_new_export_written_over_a_loaded_orders_file_is_refused(tiny_home: Path) -> None:
    """A job that writes each day's orders over yesterday's file under one name would have
    each night replace, and drop, the day before: the file keeps none of its order keys."""
    first = ingest_landing.fn(settings_at(tiny_home), "run-1")
    verdicts = judged_state(tiny_home, "run-1")
    daily, next_month = sorted((tiny_home / "landing" / "orders").glob("*.csv"))[1:3]
    old_lines = pl.read_csv(daily, infer_schema=False).height
    daily.write_bytes(next_month.read_bytes())
    with pytest.raises(ContractError, match=r"none of the [\d,]+ order keys .*keeps_its_keys"):
        ingest_landing.fn(settings_at(tiny_home), "run-2")
    del verdicts["audit"]  # run-2 wrote none
    assert {k: v for k, v in judged_state(tiny_home, "run-1").items() if k != "audit"} == verdicts

    # named as its own export, it loads, and the old name's lines stay from the archive
    daily.rename(daily.with_name("export-2.csv"))
    second = ingest_landing.fn(settings_at(tiny_home), "run-3")
    assert second.files_only_archived == [f"orders/{daily.name}"]
    orders = second.audit["orders"]
    assert orders["rows_staged"] == first.audit["orders"]["rows_staged"]  # a copy of next_month
    assert orders["rows_in"] == first.audit["orders"]["rows_in"] + orders["rows_new"]
    assert archived_rows(tiny_home, f"orders/{daily.name}").height == old_lines


def test_a_file_still_being_written_waits_for_the_next_ingest(
    tiny_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export or upload writing a file under its final name while the night reads it
    would leave a partial archive copy under another version's digest, and a correction
    being rewritten in place would lose its loaded version. Such a file is left for the
    next ingest, named as not read; the rest loads. The writer is simulated by appending a
    line after each of these files has been read into the archive."""
    import tasks.ingest

    ingest_landing.fn(settings_at(tiny_home), "run-1")
    orders = tiny_home / "landing" / "orders"
    corrected = sorted(orders.glob("*.csv"))[2]
    original_rows = archived_rows(tiny_home, f"orders/{corrected.name}")
    frame = pl.read_csv(corrected, infer_schema=False)
    frame.head(frame.height - 5).write_csv(corrected)  # a correction, rewritten in place
    arriving = orders / "late-export.csv"
    frame.tail(3).with_columns(
        pl.concat_str(pl.lit("LATE-"), "order_id").alias("order_id")
    ).write_csv(arriving)
    still_written = {f"orders/{corrected.name}": corrected, "orders/late-export.csv": arriving}
    last_line = {path: path.read_text().splitlines()[-1] for path in still_written.values()}
    write = tasks.ingest.write_parquet_atomically

    def write_while_the_writer_goes_on(rows, path: Path) -> None:  # noqa: ANN001
        write(rows, path)
        for source_file, landing_path in still_written.items():
            if path.name.startswith(Path(source_file).name):
                with landing_path.open("a") as f:
                    f.write(last_line[landing_path] + "\n")

    monkeypatch.setattr(tasks.ingest, "write_parquet_atomically", write_while_the_writer_goes_on)
    summary = ingest_landing.fn(settings_at(tiny_home), "run-2")
    assert summary.files_loaded == []
    assert set(summary.files_not_read) == set(still_written)
    assert all("changed while it was read" in why for why in summary.files_not_read.values())
    # the loaded version stays, with its one archive copy; nothing of the partial reads
    assert archived_rows(tiny_home, f"orders/{corrected.name}").equals(original_rows)
    archive = [p.name for p in (tiny_home / "raw" / "orders").iterdir()]
    assert sum(name.startswith(corrected.name) for name in archive) == 1
    assert not any(name.startswith("late-export") for name in archive)

    monkeypatch.setattr(tasks.ingest, "write_parquet_atomically", write)  # the writer is done
    done = ingest_landing.fn(settings_at(tiny_home), "run-3")
    assert sorted(done.files_loaded) == sorted(still_written)
    assert done.files_not_read == {}
    assert archived_rows(tiny_home, "orders/late-export.csv").height == 3 + 1


def test_under_a_settle_window_a_freshly_modified_file_waits(tiny_home: Path) -> None:
    """An upload that stalls mid-file is not seen changing while it is read; with
    NIGHTSHIFT_LANDING_SETTLE_SECONDS a file modified that recently waits for the next
    ingest (its loaded version, if any, stays) and the rest load."""
    import os
    import time

    hour_ago = time.time() - 3600
    for path in (tiny_home / "landing").rglob("*.csv"):
        os.utime(path, (hour_ago, hour_ago))
    first = ingest_landing.fn(settings_at(tiny_home, landing_settle_seconds=600), "run-1")
    assert first.files_not_read == {}
    corrected = sorted((tiny_home / "landing" / "orders").glob("*.csv"))[2]
    before = archived_rows(tiny_home, f"orders/{corrected.name}")
    frame = pl.read_csv(corrected, infer_schema=False)
    frame.head(frame.height - 5).write_csv(corrected)  # arriving now, maybe not whole yet

    waiting = ingest_landing.fn(settings_at(tiny_home, landing_settle_seconds=600), "run-2")
    (why,) = waiting.files_not_read.values()
    assert set(waiting.files_not_read) == {f"orders/{corrected.name}"}
    assert "under NIGHTSHIFT_LANDING_SETTLE_SECONDS (600): it waits" in why
    assert waiting.files_loaded == [] and waiting.files_only_archived == []
    assert archived_rows(tiny_home, f"orders/{corrected.name}").equals(before)

    settled = ingest_landing.fn(settings_at(tiny_home, landing_settle_seconds=0), "run-3")
    assert settled.files_loaded == [f"orders/{corrected.name}"]
    assert archived_rows(tiny_home, f"orders/{corrected.name}").height == frame.height - 5


def write_resent_files(landing: Path) -> None:
    """Files that repeat earlier ones, as a shop's export that sends some lines twice does:
    exact copies and lines that reuse a key with other values. `2023-12_resent.csv` sorts
    before every synthetic file, so its copies become first copies and its lines win their
    keys; `zz_resent.csv` sorts after them and loses."""
    for table, sent in (("orders", "2024-05"), ("events", "2024-03")):
        rows = pl.read_csv(landing / table / f"synthetic_{table}_{sent}.csv", infer_schema=False)
        copies = rows.gather([0, 1, 2, 3, 5, 8, 13, 21, 34, 55])
        if table == "orders":  # five lines that reuse a key with another quantity
            conflicts = rows.gather([60, 61, 62, 63, 64]).with_columns(quantity=pl.lit("97"))
            copies = pl.concat([copies, conflicts])
        copies.write_csv(landing / table / "2023-12_resent.csv")
        earliest = pl.read_csv(
            landing / table / f"synthetic_{table}_2024-01.csv", infer_schema=False
        )
        later = earliest.gather([0, 1, 2, 4, 7])
        if table == "orders":
            later = pl.concat(
                [later, earliest.gather([40, 41]).with_columns(quantity=pl.lit("98"))]
            )
        later.write_csv(landing / table / "zz_resent.csv")


def judged_state(home: Path, run_id: str) -> dict[str, object]:
    """Every verdict and count staging holds, without the load each row came in with."""
    tables = [f"staging.judged_{t}" for t in ("orders", "events", "products", "inventory")]
    with open_warehouse(settings_at(home), read_only=True) as con:
        state: dict[str, object] = {
            table: table_checksum(con, table, exclude=("load_id",)) for table in tables
        }
        state["quarantine.rows"] = table_checksum(con, "quarantine.rows", exclude=("run_id",))
        state["audit"] = con.execute(
            "select table_name, rows_in, rows_staged, rows_quarantined, rows_duplicate "
            "from meta.row_audit where run_id = $r order by table_name",
            {"r": run_id},
        ).fetchall()
        # a row's load is its first copy's file's, whichever ingest judged it
        state["loads agree"] = [
            con.execute(
                f"select count(*) from {table} as j join meta.loaded_files as f "  # noqa: S608
                "using (source_file) where j.load_id is distinct from f.load_id"
            ).fetchone()[0]
            for table in tables
        ]
    return state


@pytest.mark.parametrize(
    "arrivals",
    [
        # a night's files: the last month, and a late-sorting resend
        [["synthetic_orders_2024-06.csv", "synthetic_events_2024-06.csv", "zz_resent.csv"]],
        # a resend that sorts first: its copies take over first copies, its lines win keys
        [["2023-12_resent.csv"]],
        # three nights
        [["zz_resent.csv"], ["2023-12_resent.csv", "synthetic_orders_2024-06.csv"]],
    ],
    ids=["last-month", "earlier-sorting-resend", "three-nights"],
)
def test_an_increment_judges_exactly_as_a_full_build(
    tmp_path: Path, tiny_shop: Path, arrivals: list[list[str]]
) -> None:
    full = tmp_path / "full"
    shutil.copytree(tiny_shop / "landing", full / "landing")
    write_resent_files(full / "landing")
    ingest_landing.fn(settings_at(full), "run-full")
    expected = judged_state(full, "run-full")
    with open_warehouse(settings_at(full), read_only=True) as con:
        conflicts = con.execute(
            "select source_file, source_row from quarantine.rows "
            "where reason = 'duplicate_key_conflict' and source_file like '%orders/%' "
        ).fetchall()
    # the planted keys are lost by the May lines to the earlier resend, and by the later one
    assert {("orders/synthetic_orders_2024-05.csv", row) for row in range(61, 66)} <= set(conflicts)
    assert {("orders/zz_resent.csv", row) for row in (6, 7)} <= set(conflicts)

    home = tmp_path / "nightly"
    shutil.copytree(full / "landing", home / "landing")
    held_back = tmp_path / "held_back"
    for night in arrivals:
        for name in night:
            for path in (home / "landing").glob(f"*/{name}"):
                (held_back / path.parent.name).mkdir(parents=True, exist_ok=True)
                path.rename(held_back / path.parent.name / name)
    ingest_landing.fn(settings_at(home), "run-0")
    for night, names in enumerate(arrivals, start=1):
        for name in names:
            for path in held_back.glob(f"*/{name}"):
                path.rename(home / "landing" / path.parent.name / name)
        summary = ingest_landing.fn(settings_at(home), f"run-{night}")
        assert summary.staging_judged == "changed files"
    assert judged_state(home, f"run-{len(arrivals)}") == expected


def correct_files(landing: Path) -> None:
    """Corrections a shop sends the next day: the early resend loses its conflicting lines
    and some copies (so the May lines get their keys and first copies back), and a month of
    orders and of events each lose lines and change some."""
    for table in ("orders", "events"):
        resent = landing / table / "2023-12_resent.csv"
        pl.read_csv(resent, infer_schema=False).head(6).write_csv(resent)
        month = landing / table / f"synthetic_{table}_2024-02.csv"
        rows = pl.read_csv(month, infer_schema=False)
        changed = pl.col("sku") if table == "events" else pl.col("quantity")
        rows = (
            rows.head(rows.height - 5)
            .with_row_index()
            .with_columns(
                pl.when(pl.col("index") % 50 == 3)
                .then(pl.lit("2"))
                .otherwise(changed)
                .alias("sku" if table == "events" else "quantity")
            )
        )
        rows.drop("index").write_csv(month)


def test_a_corrected_file_is_judged_exactly_as_a_full_build(
    tmp_path: Path, tiny_shop: Path
) -> None:
    home = tmp_path / "nightly"
    shutil.copytree(tiny_shop / "landing", home / "landing")
    write_resent_files(home / "landing")
    ingest_landing.fn(settings_at(home), "run-0")
    correct_files(home / "landing")
    summary = ingest_landing.fn(settings_at(home), "run-1")
    assert summary.staging_judged == "changed files"
    assert len(summary.files_loaded) == 4

    full = tmp_path / "full"
    shutil.copytree(home / "landing", full / "landing")
    ingest_landing.fn(settings_at(full), "run-1")
    assert judged_state(home, "run-1") == judged_state(full, "run-1")
    with open_warehouse(settings_at(home), read_only=True) as con:
        may_losers = con.execute(
            "select count(*) from quarantine.rows where reason = 'duplicate_key_conflict' "
            "and source_file = 'orders/synthetic_orders_2024-05.csv' and source_row between 61 and 65"
        ).fetchone()
    assert may_losers == (0,)  # the lines that beat them were taken away


def test_an_increment_takes_the_rows_of_every_changed_file_and_replaced_version() -> None:
    tables = {
        "orders/a.csv": "orders", "events/b.csv": "events", "products/p.csv": "products",
        "inventory/i.csv": "inventory",
    }  # fmt: skip
    before = StagingBuild("settings", {"orders/a.csv": "a1", "products/p.csv": "p1"})
    added = StagingBuild("settings", {**before.files, "events/b.csv": "b1"})
    assert changed_archive_files(before, added, {"events/b.csv"}, tables) == {
        "events": ChangedFiles(["raw/events/b.csv.b1.parquet"], [])
    }
    corrected = StagingBuild("settings", {**before.files, "orders/a.csv": "a2"})
    assert changed_archive_files(before, corrected, {"orders/a.csv"}, tables) == {
        "orders": ChangedFiles(["raw/orders/a.csv.a2.parquet"], ["raw/orders/a.csv.a1.parquet"])
    }
    # archived again under its old content (a lost archive copy): a new load for its rows
    assert changed_archive_files(before, before, {"orders/a.csv"}, tables) == {
        "orders": ChangedFiles(["raw/orders/a.csv.a1.parquet"], [])
    }
    # nothing to add to, other settings or SQL, or a new catalogue: judge everything
    assert changed_archive_files(None, added, {"events/b.csv"}, tables) is None
    assert changed_archive_files(StagingBuild("other", before.files), added, set(), tables) is None
    catalogue = StagingBuild("settings", {**before.files, "products/p.csv": "p2"})
    assert changed_archive_files(before, catalogue, {"products/p.csv"}, tables) is None


def test_a_new_catalogue_or_setting_judges_every_file_again(tiny_home: Path) -> None:
    ingest_landing.fn(settings_at(tiny_home), "run-1")
    extra = pl.DataFrame(
        {"sku": ["SKU999999"], "name": ["new"], "category": ["c"], "unit_cost": ["1"],
         "list_price": ["2"], "active": ["true"]}
    )  # fmt: skip
    extra.write_csv(tiny_home / "landing" / "products" / "zz_new_products.csv")
    assert ingest_landing.fn(settings_at(tiny_home), "run-2").staging_judged == "all files"
    events = tiny_home / "landing" / "events"
    shutil.copy(events / "synthetic_events_2024-01.csv", events / "zz_copy.csv")
    lenient = settings_at(tiny_home, future_tolerance_hours=1_000_000)
    assert ingest_landing.fn(lenient, "run-3").staging_judged == "all files"
    (events / "zz_copy.csv").rename(events / "zz_copy_2.csv")
    assert ingest_landing.fn(lenient, "run-4").staging_judged == "changed files"


def test_a_bad_file_loads_nothing_and_names_itself(tiny_home: Path) -> None:
    ingest_landing.fn(settings_at(tiny_home), "run-1")
    before = warehouse_checksums(tiny_home)
    (tiny_home / "landing" / "orders" / "zz_broken.csv").write_text("order_id,sku\nA,B\n")
    (tiny_home / "landing" / "events" / "new.csv").write_text(
        "user_id,session_id,sku,event_type,ts\nC1,S1,SKU000001,view,2024-06-30 10:00:00\n"
    )
    with pytest.raises(ContractError, match=r"orders/zz_broken.csv: missing required column"):
        ingest_landing.fn(settings_at(tiny_home), "run-2")
    assert (
        warehouse_checksums(tiny_home) == before
    )  # the good new events file was not loaded either


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("user_id,session_id,sku,event_type,ts\n", "no data rows (rule: non_empty)"),
        (
            "user_id,session_id,sku,event_type,ts\nC1,S1,SKU1,view,2024-06-30 09:00:00\n"
            'C1,S1,"SKU1,view,2024-06-30 10:00:00\n',
            "a quoted value that starts on line 3 of the file is never closed (rule: readable)",
        ),
    ],
)
def test_a_file_found_bad_while_archiving_loads_nothing_and_leaves_no_archive(
    tiny_home: Path, text: str, says: str
) -> None:
    """Header-only and unparseable files pass the header check and fail as their rows stream
    into the archive: the error names the file and rule, and no archive file is left."""
    ingest_landing.fn(settings_at(tiny_home), "run-1")
    before = warehouse_checksums(tiny_home)
    archive_before = sorted(p.name for p in (tiny_home / "raw").rglob("*"))
    (tiny_home / "landing" / "events" / "zz_bad.csv").write_text(text)
    with pytest.raises(ContractError, match=r"^events/zz_bad.csv: ") as err:
        ingest_landing.fn(settings_at(tiny_home), "run-2")
    assert says in str(err.value) and "infer_schema" not in str(err.value)
    assert warehouse_checksums(tiny_home) == before
    assert sorted(p.name for p in (tiny_home / "raw").rglob("*")) == archive_before


def gzip_cut_short(data: bytes) -> bytes:
    """gzip data as an upload or copy cut off halfway leaves it."""
    packed = gzip.compress(data, mtime=0)
    return packed[: len(packed) // 2]


def gzip_with_a_bad_checksum(data: bytes) -> bytes:
    """gzip data whose every byte of text is there but whose CRC does not match it."""
    packed = bytearray(gzip.compress(data, mtime=0))
    packed[-8] ^= 0xFF  # the trailer's CRC-32
    return bytes(packed)


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (gzip_cut_short, r"its gzip data ends early, after [\d,]+ bytes of text"),
        (gzip_with_a_bad_checksum, r"its gzip data is damaged \(CRC check failed"),
    ],
)
def test_a_damaged_gzip_file_loads_nothing_and_names_its_damage(
    tiny_home: Path, damage, says: str
) -> None:
    """A .csv.gz cut short reads fine up to where it stops, so its header passes; the readers
    used to fail deep in the file with a bare 'unexpected end of file' that named neither
    the file nor the fault (and the CLI printed a traceback)."""
    ingest_landing.fn(settings_at(tiny_home), "run-1")
    before = warehouse_checksums(tiny_home)
    orders = tiny_home / "landing" / "orders"
    text = sorted(orders.glob("*.csv"))[0].read_bytes()
    (orders / "zz_upload.csv.gz").write_bytes(damage(text))
    with pytest.raises(ContractError, match=r"^orders/zz_upload.csv.gz: cannot be read: ") as err:
        ingest_landing.fn(settings_at(tiny_home), "run-2")
    assert re.search(says, str(err.value)) and str(err.value).endswith("(rule: readable)")
    assert warehouse_checksums(tiny_home) == before


def test_a_gzip_file_still_being_uploaded_waits_instead_of_failing(
    tiny_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A .csv.gz read while its upload goes on reads as cut short (Polars decompresses the
    whole file to read its header). That is the upload's doing, not the file's: it waits for
    the next ingest like any file that changes while it is read, and the rest loads. The
    uploader is simulated by writing the rest of the file once its header has been read."""
    from nightshift import contract

    ingest_landing.fn(settings_at(tiny_home), "run-1")
    orders = tiny_home / "landing" / "orders"
    whole = gzip.compress(sorted(orders.glob("*.csv"))[0].read_bytes(), mtime=0)
    uploading = orders / "zz_upload.csv.gz"
    uploading.write_bytes(whole[: len(whole) // 2])
    (tiny_home / "landing" / "events" / "new.csv").write_text(
        "user_id,session_id,sku,event_type,ts\nC1,S1,SKU000001,view,2024-06-30 10:00:00\n"
    )
    scan_checked = contract.scan_checked

    def scan_while_the_upload_goes_on(path: Path, *args):  # noqa: ANN202
        try:
            return scan_checked(path, *args)
        finally:
            if path == uploading and uploading.stat().st_size < len(whole):
                uploading.write_bytes(whole)  # the rest arrives while it is read

    monkeypatch.setattr(contract, "scan_checked", scan_while_the_upload_goes_on)
    summary = ingest_landing.fn(settings_at(tiny_home), "run-2")
    assert summary.files_loaded == ["events/new.csv"]
    assert "changed while it was read" in summary.files_not_read["orders/zz_upload.csv.gz"]
    done = ingest_landing.fn(settings_at(tiny_home), "run-3")
    assert done.files_loaded == ["orders/zz_upload.csv.gz"]
    assert done.files_not_read == {}


def test_an_io_error_of_a_whole_gzip_file_is_not_blamed_on_it(tmp_path: Path) -> None:
    """Only a file read again and found damaged is named as damaged: a full disk while its
    archive copy is written stays the error it is."""
    path = tmp_path / "orders.csv.gz"
    path.write_bytes(gzip.compress(b"order_id\n1\n"))
    with (
        pytest.raises(OSError, match="No space left") as err,
        gzip_damage_named(path, "orders.csv.gz"),
    ):
        raise OSError(28, "No space left on device")
    assert not isinstance(err.value, ContractError)


def write_orders(path: Path, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "order_id,line_no,customer_id,sku,quantity,unit_price,ordered_at,country,channel"
    path.write_text("\n".join([header, *rows]) + "\n")


def test_rules_quarantine_with_row_and_column_in_the_detail(tmp_path: Path) -> None:
    write_orders(
        tmp_path / "landing" / "orders" / "day1.csv",
        [
            "A1,1,C1,SKU1,2,3.50,2024-01-02 10:00:00,UK,web",
            "A1,2,C1,SKU2,two,3.50,2024-01-02 10:00:00,UK,web",
            "A1,3,C1,SKU3,1.5,3.50,2024-01-02 10:00:00,UK,web",
            "A2,1,C2,SKU1,1,1.00,2024-02-30 10:00:00,UK,web",
            "A3,1,,POST,1,18.00,2024-01-02 10:00:00,UK,web",
            "A4,1,,SKU1,-3,0,2024-01-02 10:00:00,UK,web",
            "CA1,1,C1,SKU1,-1,3.50,2024-01-05 10:00:00,UK,web",
            "A1,1,C1,SKU1,5,3.50,2024-01-02 10:00:00,UK,web",
            "A1,1,C1,SKU1,2,3.50,2024-01-02 10:00:00,UK,web",
            "",  # a blank line: a row of empty values
            ",2,C1,SKU1,1,1.00,2024-01-02 10:00:00,UK,web",
            ",,,,,,,,",  # the same empty values again: a duplicate of the blank line
        ],
    )
    summary = ingest_landing.fn(settings_at(tmp_path), "run-r")
    assert summary.audit["orders"] == {
        "rows_in": 12, "rows_staged": 2, "rows_quarantined": 8, "rows_duplicate": 2,
        "rows_new": 12,
    }  # fmt: skip
    with open_warehouse(settings_at(tmp_path), read_only=True) as con:
        rows = con.execute(
            "select source_row, reason, detail from quarantine.rows order by source_row"
        ).fetchall()
        returns = con.execute("select quantity from staging.stg_orders where is_return").fetchall()
        (conflict,) = con.execute(
            "select record from quarantine.rows where reason = 'duplicate_key_conflict'"
        ).fetchone()
    # the losing line's raw text, as it arrived, read back from the archive
    assert json.loads(conflict) == {
        "order_id": "A1", "line_no": "1", "customer_id": "C1", "sku": "SKU1", "quantity": "5",
        "unit_price": "3.50", "ordered_at": "2024-01-02 10:00:00", "country": "UK", "channel": "web",
    }  # fmt: skip
    assert rows == [
        (2, "bad_value", "quantity 'two' is not an integer"),
        (3, "bad_value", "quantity '1.5' is not an integer"),
        (4, "bad_timestamp", "ordered_at '2024-02-30 10:00:00' is not a timestamp"),
        (5, "non_product_sku", "sku 'POST' is a fee, postage or adjustment code, not a product"),
        (
            6,
            "stock_adjustment",
            "zero price and no customer: a stock write-off or correction, not demand",
        ),
        (8, "duplicate_key_conflict", "order A1 line 1 was already loaded with different values"),
        (10, "null_key", "every column is empty: a blank line or a row of empty fields"),
        (11, "null_key", "order_id, line_no and sku must not be empty"),
    ]
    assert returns == [(-1,)]  # a return is staged, not quarantined
    assert "products: derived from order lines (no catalogue landed)" in summary.defaults_used


def test_a_blank_line_is_a_quarantined_row_that_says_so_in_every_table(tiny_home: Path) -> None:
    """A spreadsheet's export often ends with a blank line: it is one row of empty values,
    counted and quarantined (nothing is lost), with a detail that says what it is."""
    for table in ("orders", "events", "products", "inventory"):
        last = sorted((tiny_home / "landing" / table).glob("*.csv"))[-1]
        with last.open("a") as handle:
            handle.write("\n")
    summary = ingest_landing.fn(settings_at(tiny_home), "run-b")
    with open_warehouse(settings_at(tiny_home), read_only=True) as con:
        blank = con.execute(
            "select source_table, count(*) from quarantine.rows "
            "where reason = 'null_key' and detail like 'every column is empty%' group by all"
        ).fetchall()
    assert sorted(blank) == [("events", 1), ("inventory", 1), ("orders", 1), ("products", 1)]
    for audit in summary.audit.values():
        assert audit["rows_in"] == (
            audit["rows_staged"] + audit["rows_quarantined"] + audit["rows_duplicate"]
        )


def test_csv_records_that_are_not_rows_are_quarantined_and_the_file_still_loads(
    tmp_path: Path,
) -> None:
    """One record with a field too many, broken quoting or bytes that are not UTF-8 used to
    fail the whole ingest; now each is quarantined with its line and text, the rest stage,
    the accounting holds, a rerun changes nothing and a corrected file takes them away."""
    path = tmp_path / "landing" / "orders" / "day1.csv"
    good = "A1,1,C1,SKU1,2,3.50,2024-01-02 10:00:00,UK,web"
    rows = [
        good,
        "A1,2,C1,SKU2,2,3.50,2024-01-02 10:00:00,UK,web,gift wrap",
        'A1,3,C1,SKU3,2,3.50,2024-01-02 10:00:00,"UK"x,web',
        "A1,4,C1,SKU4,2,3.50,2024-01-02 10:00:00,Curaçao,web",
        'A1,5,C1,SKU5,1,3.50,2024-01-02 10:00:00,12" vinyl,web',
        good,
    ]
    write_orders(path, rows)
    path.write_bytes(path.read_bytes().replace("ç".encode(), "ç".encode("latin-1")))
    summary = ingest_landing.fn(settings_at(tmp_path), "run-1")
    assert summary.audit["orders"] == {
        "rows_in": 6, "rows_staged": 2, "rows_quarantined": 3, "rows_duplicate": 1, "rows_new": 6,
    }  # fmt: skip
    assert summary.quarantined_by_reason["orders"] == {"malformed_row": 2, "bad_encoding": 1}
    with open_warehouse(settings_at(tmp_path), read_only=True) as con:
        quarantined = con.execute(
            "select run_id, source_row, reason, detail, record from quarantine.rows "
            "order by source_row"
        ).fetchall()
        staged = con.execute("select sku, country from staging.stg_orders order by 1").fetchall()
    assert [(run, row, reason) for run, row, reason, _, _ in quarantined] == [
        ("run-1", 2, "malformed_row"),
        ("run-1", 3, "malformed_row"),
        ("run-1", 4, "bad_encoding"),
    ]
    assert "line 3 of the file has 10 fields where the header has 9" in quarantined[0][3]
    assert json.loads(quarantined[0][4]) == {"text": rows[1]}
    assert json.loads(quarantined[2][4]) == {"text": rows[3].replace("ç", "\\xe7")}
    assert staged == [("SKU1", "UK"), ("SKU5", '12" vinyl')]

    before = warehouse_checksums(tmp_path)
    assert ingest_landing.fn(settings_at(tmp_path), "run-2").files_loaded == []
    assert warehouse_checksums(tmp_path) == before

    write_orders(path, [good, rows[1].removesuffix(",gift wrap")])
    corrected = ingest_landing.fn(settings_at(tmp_path), "run-3")
    assert corrected.audit["orders"]["rows_in"] == 2
    assert corrected.quarantined_by_reason.get("orders", {}) == {}


def test_columns_beyond_the_contract_are_named_in_the_log(tmp_path: Path, caplog) -> None:
    """A renamed optional column (channel sent as sales_channel) would load as nulls; the
    log names the columns ingest ignored, file by file."""
    path = tmp_path / "landing" / "orders" / "day1.csv"
    path.parent.mkdir(parents=True)
    path.write_text(
        "order_id,line_no,customer_id,sku,quantity,unit_price,ordered_at,country,sales_channel\n"
        "A1,1,C1,SKU1,2,3.50,2024-01-02 10:00:00,UK,web\n"
    )
    with caplog.at_level("INFO", logger="tasks.ingest"):
        summary = ingest_landing.fn(settings_at(tmp_path), "run-1")
    assert summary.audit["orders"]["rows_staged"] == 1
    assert "orders/day1.csv: columns not in the contract, ignored: sales_channel" in caplog.messages


def test_without_orders_ingest_says_what_to_do(tmp_path: Path) -> None:
    from nightshift.errors import NightshiftError

    with pytest.raises(NightshiftError, match="no orders loaded"):
        ingest_landing.fn(settings_at(tmp_path), "run-empty")
    # orders sent to the wrong folder: the error says where they are
    write_orders(tmp_path / "landing" / "order" / "day1.csv", ["A1,1,C1,SKU1,2,3.50,2024-01-02 10:00:00,UK,web"])  # fmt: skip
    with pytest.raises(NightshiftError, match=r"landing/order/ is not read: not a table's folder"):
        ingest_landing.fn(settings_at(tmp_path), "run-misplaced")


def test_gzipped_landing_files_judge_as_their_plain_copies(tiny_home: Path, tmp_path: Path) -> None:
    """A shop that gzips its CSV exports gets the same staged rows, quarantine and exact
    row accounting as one that does not; a stray file beside them is named, not read."""
    packed = tmp_path / "packed"
    shutil.copytree(tiny_home, packed)
    for path in sorted((packed / "landing").glob("*/*.csv")):
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    (packed / "landing" / "orders" / "returns.xlsx").write_bytes(b"PK")
    plain = ingest_landing.fn(settings_at(tiny_home), "run-1")
    compressed = ingest_landing.fn(settings_at(packed), "run-1")
    assert compressed.audit == plain.audit
    assert compressed.quarantined_by_reason == plain.quarantined_by_reason
    assert observed_counts(packed, "run-1") == nonzero(planted_counts(packed))
    assert compressed.files_not_read == {
        "orders/returns.xlsx": "not a landing file: the names read end in .csv, .csv.gz, .parquet"
    }
    assert plain.files_not_read == {}
    staged = {}
    for home in (tiny_home, packed):
        with open_warehouse(settings_at(home), read_only=True) as con:
            staged[home] = {
                table: table_checksum(
                    con, table, exclude=("load_id", "loaded_at", "run_id", "source_file")
                )
                for table in CHECKED_TABLES[:4]
            }
            staged[home]["quarantine rows"] = con.execute(
                "select list(replace(source_file, '.gz', '') || ':' || source_row || ':' || reason"
                " order by all) from quarantine.rows"
            ).fetchone()[0]
    assert staged[packed] == staged[tiny_home]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_landing_file_names_are_names_not_patterns(tiny_home: Path, suffix: str) -> None:
    """Polars reads a path with [ ], * or ? as a glob: a shop's "orders [dec] 2026.csv" was
    refused as unreadable ("expanded paths were empty")."""
    plain = ingest_landing.fn(settings_at(tiny_home), "run-1").audit
    orders = tiny_home / "landing" / "orders"
    first = sorted(orders.glob("*.csv"))[0]
    name = f"O'Brien export [dec] *?{suffix}"
    if suffix == ".csv.gz":
        (orders / name).write_bytes(gzip.compress(first.read_bytes()))
    elif suffix == ".parquet":
        pl.read_csv(first, infer_schema=False).write_parquet(orders / name)
    else:
        shutil.copyfile(first, orders / name)
    first.unlink()
    renamed = ingest_landing.fn(settings_at(tiny_home), "run-2")
    assert renamed.files_loaded == [f"orders/{name}"]
    assert renamed.audit["orders"]["rows_staged"] == plain["orders"]["rows_staged"]


def test_timestamps_are_read_in_the_shop_timezone_and_stored_as_instants(tmp_path: Path) -> None:
    write_orders(
        tmp_path / "landing" / "orders" / "o.csv",
        [
            "A1,1,C1,SKU1,1,1.00,2024-07-01 00:30:00,UK,web",  # local time, no offset
            "A2,1,C1,SKU1,1,1.00,2024-06-30T23:30:00+00:00,UK,web",  # UTC, explicit offset
        ],
    )
    home_settings = settings_at(tmp_path, timezone="Europe/London")
    ingest_landing.fn(home_settings, "run-tz")
    with open_warehouse(home_settings, read_only=True) as con:
        rows = con.execute(
            "select order_id, order_date, epoch(ordered_at) from staging.stg_orders order by order_id"
        ).fetchall()
    # 00:30 in London (BST) is 23:30 UTC the day before: both are the same instant, and
    # both belong to the shop's business date 2024-07-01.
    assert rows[0][2] == rows[1][2]
    assert [r[1] for r in rows] == [date(2024, 7, 1), date(2024, 7, 1)]


def test_a_parquet_timestamp_with_a_zone_keeps_its_instant(tmp_path: Path) -> None:
    """A zone-aware Parquet column holds instants: they must not be read again as wall times
    in the shop's timezone (they were, an hour off for a UTC column in a London summer)."""
    folder = tmp_path / "landing" / "orders"
    folder.mkdir(parents=True)
    instant = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
    orders = pl.DataFrame(
        {
            "order_id": ["A1"],
            "line_no": [1],
            "customer_id": ["C1"],
            "sku": ["SKU1"],
            "quantity": [1],
            "unit_price": [1.0],
            "ordered_at": [instant],
            "country": ["UK"],
        }
    )
    orders.write_parquet(folder / "utc.parquet")
    orders.with_columns(
        pl.lit("A2").alias("order_id"),
        pl.col("ordered_at").dt.convert_time_zone("America/New_York"),
    ).write_parquet(folder / "new_york.parquet")
    home_settings = settings_at(tmp_path, timezone="Europe/London")
    ingest_landing.fn(home_settings, "run-tz")
    with open_warehouse(home_settings, read_only=True) as con:
        staged = con.execute(
            "select order_id, epoch(ordered_at) from staging.stg_orders order by 1"
        ).fetchall()
    assert staged == [("A1", instant.timestamp()), ("A2", instant.timestamp())]


def test_duckdb_sees_every_staged_column_typed(tiny_home: Path) -> None:
    ingest_landing.fn(settings_at(tiny_home), "run-t")
    with open_warehouse(settings_at(tiny_home), read_only=True) as con:
        types = dict(con.execute(
            "select column_name, data_type from duckdb_columns() where table_name = 'stg_orders'"
        ).fetchall())  # fmt: skip
    assert types["quantity"] == "BIGINT"
    assert types["unit_price"].startswith("DECIMAL")
    assert types["ordered_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["order_date"] == "DATE"


def test_every_registered_staging_table_exists_after_ingest(tiny_home: Path) -> None:
    from nightshift import tables
    from nightshift.warehouse import table_exists

    ingest_landing.fn(settings_at(tiny_home), "run-reg")
    names = [t.name for t in (*tables.JUDGED.values(), *tables.STAGING.values())]
    with open_warehouse(settings_at(tiny_home), read_only=True) as con:
        missing = [
            name for name in [*names, tables.DERIVED_PRODUCTS.name] if not table_exists(con, name)
        ]
    assert missing == []


def test_a_warehouse_with_staging_tables_from_before_the_views_still_ingests(
    tiny_home: Path,
) -> None:
    with open_warehouse(settings_at(tiny_home)) as con:
        con.execute("create schema if not exists staging")
        con.execute("create table staging.stg_orders as select 1 as x")
    summary = ingest_landing.fn(settings_at(tiny_home), "run-legacy")
    assert summary.audit["orders"]["rows_staged"] > 0


def test_raw_tables_of_a_warehouse_from_before_the_archive_move_into_it(tiny_home: Path) -> None:
    """A warehouse whose raw rows are DuckDB tables (before the Parquet archive) keeps every
    row: with the landing files gone, the next ingest stages the same rows from those tables."""
    ingest_landing.fn(settings_at(tiny_home), "run-1")
    before = warehouse_checksums(tiny_home)
    with open_warehouse(settings_at(tiny_home)) as con:
        con.execute("create schema raw")
        for table in ("orders", "events", "products", "inventory"):
            files = [
                str(tiny_home / f)
                for (f,) in con.execute(
                    "select archive_file from meta.loaded_files where source_table = $t",
                    {"t": table},
                ).fetchall()
            ]
            con.execute(f"create table raw.{table} as select * from read_parquet($f)", {"f": files})  # noqa: S608
        con.execute("update meta.loaded_files set archive_file = null")
    shutil.rmtree(tiny_home / "raw")
    shutil.rmtree(tiny_home / "landing")
    (tiny_home / "landing" / "orders").mkdir(parents=True)

    summary = ingest_landing.fn(settings_at(tiny_home), "run-2")
    assert summary.files_loaded == []
    assert warehouse_checksums(tiny_home) == before
    with open_warehouse(settings_at(tiny_home), read_only=True) as con:
        left = con.execute(
            "select count(*) from duckdb_tables() where schema_name = 'raw'"
        ).fetchone()
    assert left == (0,)


def test_a_file_gone_from_landing_keeps_its_rows_until_it_is_forgotten(
    tiny_home: Path, tmp_path: Path
) -> None:
    ingest_landing.fn(settings_at(tiny_home), "run-1")
    before = warehouse_checksums(tiny_home)
    path = sorted((tiny_home / "landing" / "orders").glob("*.csv"))[1]
    source_file = f"orders/{path.name}"
    with pytest.raises(NightshiftError, match=f"landing/{source_file} is still there"):
        ingest_landing.fn(settings_at(tiny_home), "run-x", forget=[source_file])
    with pytest.raises(NightshiftError, match="cannot forget orders/.* is still there"):
        ingest_landing.fn(settings_at(tiny_home), "run-x", forget=["orders/*"])
    with pytest.raises(NightshiftError, match="cannot forget orders/zz_\\*: it is not a loaded"):
        ingest_landing.fn(settings_at(tiny_home), "run-x", forget=["orders/zz_*"])

    # a shop clears its landing folder: neither a rerun nor a full refresh loses the rows
    path.rename(tmp_path / path.name)
    rerun = ingest_landing.fn(settings_at(tiny_home), "run-2")
    assert rerun.files_only_archived == [source_file]
    assert warehouse_checksums(tiny_home) == before
    refresh = ingest_landing.fn(settings_at(tiny_home), "run-3", full_refresh=True)
    assert (refresh.staging_judged, refresh.files_only_archived) == ("all files", [source_file])
    assert warehouse_checksums(tiny_home) == before

    # forgetting takes them out: the warehouse is the one the other files alone build
    a_glob = source_file.replace(".csv", "*")  # the one file, named as a pattern
    forgot = ingest_landing.fn(settings_at(tiny_home), "run-4", forget=[a_glob])
    assert (forgot.files_forgotten, forgot.files_only_archived) == ([source_file], [])
    assert forgot.audit["orders"]["rows_in"] < rerun.audit["orders"]["rows_in"]
    without = tmp_path / "without"
    shutil.copytree(tiny_home / "landing", without / "landing")
    ingest_landing.fn(settings_at(without), "run-4")
    assert warehouse_checksums(tiny_home) == warehouse_checksums(without)
    assert judged_state(tiny_home, "run-4") == judged_state(without, "run-4")
    with pytest.raises(NightshiftError, match=f"cannot forget {source_file}: it is not a loaded"):
        ingest_landing.fn(settings_at(tiny_home), "run-5", forget=[source_file])


def test_a_lost_warehouse_is_built_again_from_the_raw_archive(tiny_home: Path) -> None:
    """A warehouse lost or moved aside (damaged) took the record of the loaded files with it:
    the next ingest reloaded landing/ and pruned the archive copies of files gone from
    there, their rows with them, and the unparsed records that live only in the warehouse.
    The archive's manifest brings back the same staging, quarantine and records."""
    orders = tiny_home / "landing" / "orders"
    write_orders(
        orders / "zz_day.csv",
        ["Z1,1,C1,SKU000001,2,3.50,2024-01-02 10:00:00,UK,web,gift wrap"],  # a field too many
    )
    ingest_landing.fn(settings_at(tiny_home), "run-1")
    gone = sorted(orders.glob("synthetic_*.csv"))[0]
    gone.unlink()  # loaded, then cleared from landing/: its rows stay
    ingest_landing.fn(settings_at(tiny_home), "run-2")
    before = warehouse_checksums(tiny_home)
    with open_warehouse(settings_at(tiny_home), read_only=True) as con:
        unparsed = con.execute("select count(*) from meta.unparsed_rows").fetchone()[0]
    assert unparsed == 1

    warehouse = settings_at(tiny_home).warehouse_path
    warehouse.rename(warehouse.with_name("warehouse.duckdb.damaged"))
    rebuilt = ingest_landing.fn(settings_at(tiny_home), "run-3")
    assert rebuilt.files_loaded == []  # the landing files are the ones the manifest lists
    assert rebuilt.staging_judged == "all files"
    assert f"orders/{gone.name}" in rebuilt.files_only_archived
    assert warehouse_checksums(tiny_home) == before
    assert rebuilt.audit == ingest_landing.fn(settings_at(tiny_home), "run-4").audit


def test_a_product_a_corrected_catalogue_drops_stays_known_as_retired(tiny_home: Path) -> None:
    """A shop whose catalogue export lists only its active products drops the discontinued
    ones from its next version. Their order lines turned unknown_sku (131 lines of one SKU on
    `tiny`), taking the product's demand history out of every model, without a word. The
    product now stays known, inactive, until a catalogue lists it again; a warehouse built
    again from the raw archive keeps it too."""
    settings = settings_at(tiny_home)
    ingest_landing.fn(settings, "run-1")
    catalogue = next((tiny_home / "landing" / "products").glob("*.csv"))
    original = catalogue.read_text()

    def staged_lines_and_product(sku: str) -> tuple[int, tuple | None]:
        with open_warehouse(settings, read_only=True) as con:
            lines = con.execute(
                "select count(*) from staging.stg_orders where sku = $s", {"s": sku}
            ).fetchone()[0]
            product = con.execute(
                "select name, active, is_retired from staging.stg_products where sku = $s",
                {"s": sku},
            ).fetchone()
        return lines, product

    sku = "SKU000005"
    lines, product = staged_lines_and_product(sku)
    assert lines > 0 and product[1:] == (True, False)
    quarantined = ingest_landing.fn(settings, "run-2").quarantined_by_reason["orders"]

    catalogue.write_text("".join(r for r in original.splitlines(True) if not r.startswith(sku)))
    dropped = ingest_landing.fn(settings, "run-3")
    assert dropped.quarantined_by_reason["orders"] == quarantined  # no new unknown_sku
    assert staged_lines_and_product(sku) == (lines, (product[0], False, True))

    warehouse = settings.warehouse_path
    warehouse.rename(warehouse.with_name("warehouse.duckdb.aside"))
    ingest_landing.fn(settings, "run-4")
    assert staged_lines_and_product(sku) == (lines, (product[0], False, True))

    catalogue.write_text(original)  # listed again: on sale as the catalogue says
    ingest_landing.fn(settings, "run-5")
    assert staged_lines_and_product(sku) == (lines, product)
    with open_warehouse(settings, read_only=True) as con:
        assert con.execute("select count(*) from meta.retired_products").fetchone()[0] == 0


def test_a_forgotten_catalogue_takes_its_products_with_it(tiny_home: Path) -> None:
    """Forgetting a catalogue file landed by mistake takes its products out; they are not
    kept as retired the way a catalogue's correction keeps those it drops."""
    settings = settings_at(tiny_home)
    products = tiny_home / "landing" / "products"
    (catalogue,) = products.glob("*.csv")
    header, *rows = catalogue.read_text().splitlines(True)
    mistaken = [r for r in rows if r.startswith("SKU000005,")]
    catalogue.write_text("".join([header, *(r for r in rows if r not in mistaken)]))
    (products / "mistake.csv").write_text("".join([header, *mistaken]))
    first = ingest_landing.fn(settings, "run-1").quarantined_by_reason["orders"]
    (products / "mistake.csv").rename(tiny_home / "mistake.csv")
    forgot = ingest_landing.fn(settings, "run-2", forget=["products/mistake.csv"])
    with open_warehouse(settings, read_only=True) as con:
        listed = con.execute("select count(*) from staging.stg_products where sku = 'SKU000005'")
        assert listed.fetchone()[0] == 0
        assert con.execute("select count(*) from meta.retired_products").fetchone()[0] == 0
    assert forgot.quarantined_by_reason["orders"]["unknown_sku"] > first["unknown_sku"]


def test_a_lost_archive_file_is_written_again_from_landing_or_named(tiny_home: Path) -> None:
    ingest_landing.fn(settings_at(tiny_home), "run-1")
    before = warehouse_checksums(tiny_home)
    path = sorted((tiny_home / "landing" / "orders").glob("*.csv"))[0]
    (archive_file,) = archived_rows(tiny_home, f"orders/{path.name}")["archive_file"].unique()
    orphan = tiny_home / "raw" / "orders" / "left-by-a-killed-ingest.parquet.partial"
    orphan.write_bytes(b"")

    (tiny_home / archive_file).unlink()
    summary = ingest_landing.fn(settings_at(tiny_home), "run-2")
    assert summary.files_loaded == [f"orders/{path.name}"]
    assert warehouse_checksums(tiny_home) == before  # the orphan is deleted too
    assert not orphan.exists()
    # the file's rows came in with a new load, and are judged again with it
    assert summary.staging_judged == "changed files"
    assert judged_state(tiny_home, "run-2")["loads agree"] == [0, 0, 0, 0]

    (tiny_home / archive_file).unlink()
    path.unlink()
    with pytest.raises(
        NightshiftError, match=f"orders/{path.name} is missing.*--forget orders/{path.name}"
    ):
        ingest_landing.fn(settings_at(tiny_home), "run-3")
