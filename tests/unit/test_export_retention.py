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
