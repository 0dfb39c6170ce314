"""How `nightshift query` hands a result over: streamed in Arrow batches, never held whole.

The `_history` views hold every night's rows (a year of `demand_forecast` on `medium` is
about 50M rows), so a query can return far more than fits in memory. Fetching it whole
to print a 50-row table took 1.1 GB for 20M small rows. Here every format reads the
result batch by batch: the table keeps its first rows and counts the rest, CSV and JSON
are written as they come, and Parquet goes through a streaming writer. A file named by
`--out` is written beside its place and moved in only when the result is complete
(`nightshift.files.written_atomically`), so a query that fails half-way leaves no half a
file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import polars as pl
import pyarrow as pa

from nightshift.errors import NightshiftError

TABLE_ROWS = 50  # rows the table format shows; the rest are counted


@dataclass(frozen=True)
class Preview:
    """The first rows of a result and how many rows it has in all."""

    rows: pl.DataFrame
    total: int


class QueryFailed(NightshiftError):
    """DuckDB stopped while computing the result (a cast that fails on row 300,001, say)."""


def read_batches(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    """The result's Arrow batches. DuckDB computes them as they are read, so an error in
    the query can surface part-way; pyarrow hands it over as an OSError, which becomes
    QueryFailed with DuckDB's first line."""
    try:
        yield from reader
    except (OSError, pa.ArrowException) as exc:
        raise QueryFailed(str(exc).splitlines()[0]) from None


def batches(reader: pa.RecordBatchReader) -> Iterator[pl.DataFrame]:
    """The result's batches as Polars frames (empty batches skipped)."""
    for batch in read_batches(reader):
        if batch.num_rows:
            yield pl.from_arrow(batch)


def preview(reader: pa.RecordBatchReader, rows: int = TABLE_ROWS) -> Preview:
    """Keep the first `rows` rows and count every row, reading the result once."""
    kept: list[pl.DataFrame] = []
    held = total = 0
    for frame in batches(reader):
        total += frame.height
        if held < rows:
            kept.append(frame.head(rows - held))
            held += kept[-1].height
    empty = pl.from_arrow(reader.schema.empty_table())
    return Preview(pl.concat([empty, *kept], how="vertical_relaxed") if kept else empty, total)


def write_csv(reader: pa.RecordBatchReader, out: TextIO) -> int:
    """Write the result as CSV with one header, batch by batch; returns the rows written."""
    total = 0
    for frame in batches(reader):
        out.write(frame.write_csv(include_header=total == 0))
        total += frame.height
    if total == 0:
        out.write(",".join(reader.schema.names) + "\n")
    return total


def write_json(reader: pa.RecordBatchReader, out: TextIO) -> int:
    """Write the result as one JSON array of objects (dates and decimals as strings),
    indented as json.dumps(rows, indent=2) would, batch by batch; returns the rows written."""
    total = 0
    for frame in batches(reader):
        for row in frame.to_dicts():
            item = json.dumps(row, default=str, indent=2).replace("\n", "\n  ")
            out.write(("[\n  " if total == 0 else ",\n  ") + item)
            total += 1
    out.write("\n]\n" if total else "[]\n")
    return total


def write_text(reader: pa.RecordBatchReader, fmt: str, out: TextIO) -> int:
    """Write the result as 'csv' or 'json' to `out`; returns the rows written."""
    return {"csv": write_csv, "json": write_json}[fmt](reader, out)


def write_parquet(reader: pa.RecordBatchReader, path: Path) -> int:
    """Write the result as one Parquet file through a streaming writer; returns the rows."""
    import pyarrow.parquet as pq

    total = 0
    with pq.ParquetWriter(path, reader.schema) as writer:
        for batch in read_batches(reader):
            writer.write_batch(batch)
            total += batch.num_rows
    return total
