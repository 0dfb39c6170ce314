"""Old export partitions are deleted beyond the kept nights; tonight's never is."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from nightshift import tables
from nightshift.retention import beyond_newest
from tasks.publish import prune_export_partitions
from tests.conftest import settings_at

JUNE = [date(2024, 6, day) for day in (1, 2, 3, 4, 5)]


@pytest.mark.parametrize(
    ("keep", "tonight", "pruned"),
    [
        (2, JUNE[4], JUNE[:3]),
        (2, JUNE[0], JUNE[1:3]),  # a backfill keeps the night it just wrote
        (5, JUNE[4], []),
        (0, JUNE[4], []),  # 0 keeps every night
    ],
)
def test_nights_beyond_the_newest_are_pruned_except_tonight(
    keep: int, tonight: date, pruned: list[date]
) -> None:
    assert beyond_newest(reversed(JUNE), keep, {tonight}) == pruned


def test_pruning_deletes_old_partitions_of_every_dated_table_and_nothing_else(
    tmp_path: Path,
) -> None:
    settings = settings_at(tmp_path, export_nights_kept=2)
    table = tables.DATED_MARTS[0]
    folder = settings.exports_dir / table
    for night in JUNE:
        (folder / f"as_of={night}").mkdir(parents=True)
        (folder / f"as_of={night}" / "part-0.parquet").write_bytes(b"PAR1")
    unfinished = folder / f".as_of={JUNE[0]}.run-x.tmp"  # a partition being written: not a night
    unfinished.mkdir()

    assert prune_export_partitions.fn(settings, JUNE[4]) == {table: [str(d) for d in JUNE[:3]]}

    assert sorted(p.name for p in folder.iterdir()) == [
        unfinished.name,
        f"as_of={JUNE[3]}",
        f"as_of={JUNE[4]}",
    ]
    assert prune_export_partitions.fn(settings, JUNE[4]) == {}
    assert prune_export_partitions.fn(settings_at(tmp_path), JUNE[4]) == {}  # default: keep all


def test_partitions_a_dead_run_left_hidden_are_placed_if_its_marts_were_published(
    tmp_path: Path,
) -> None:
    """A run that died after replacing the marts but before moving its partitions in left
    them hidden: the next publish moves them into place (replacing the night's old one). A
    run that died before its marts were published left partitions nobody may see: deleted.
    So is a retired partition whose replacement is in place."""
    import duckdb

    from nightshift.warehouse import open_warehouse
    from tasks.publish import settle_partitions

    settings = settings_at(tmp_path)
    with duckdb.connect(str(settings.marts_path)) as con:
        con.execute("create table runs as select 'published-run' as run_id")
    folder = settings.exports_dir / "kpi_daily"

    def partition(name: str, content: str) -> Path:
        (folder / name).mkdir(parents=True)
        (folder / name / "part-0.parquet").write_text(content)
        return folder / name

    partition(f"as_of={JUNE[0]}", "old rows of June 1")
    partition(f".as_of={JUNE[0]}.published-run.tmp", "published rows of June 1")
    partition(f".as_of={JUNE[1]}.failed-run.tmp", "rows nobody published")
    partition(f"as_of={JUNE[2]}", "June 3")
    partition(f".as_of={JUNE[2]}.older-run.old", "June 3 as it was before")
    with open_warehouse(settings) as con:
        settled = settle_partitions(con, settings)
        assert settle_partitions(con, settings) == {}  # nothing left to settle
    assert settled == {
        "placed": [f"kpi_daily/.as_of={JUNE[0]}.published-run.tmp"],
        "deleted": [
            f"kpi_daily/.as_of={JUNE[1]}.failed-run.tmp",
            f"kpi_daily/.as_of={JUNE[2]}.older-run.old",
        ],
    }
    assert sorted(p.name for p in folder.iterdir()) == [f"as_of={JUNE[0]}", f"as_of={JUNE[2]}"]
    assert (
        folder / f"as_of={JUNE[0]}" / "part-0.parquet"
    ).read_text() == "published rows of June 1"
    assert (folder / f"as_of={JUNE[2]}" / "part-0.parquet").read_text() == "June 3"
