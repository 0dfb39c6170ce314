"""File IO shared by the readers and writers of landing, archive and query files.

- `open_bytes`: a file's bytes whether or not they are gzip-compressed. Shops often send
  their CSV exports as .csv.gz, and Polars reads those as they are, so the Python readers
  beside it (the tolerant CSV reader, the Online Retail adapter's encoding check) must too.
- `written_atomically`: a file appears under its name only once it is whole, so a killed
  or failed write never leaves half a file that something would read as complete (an
  archive file a row points to, a landing file, a query's --out file).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"


def open_bytes(path: Path) -> BinaryIO:
    """A file's bytes, decompressed when they are gzip's (known by their first bytes, as
    Polars knows them, whatever the name says)."""
    with path.open("rb") as handle:
        compressed = handle.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else path.open("rb")


@contextmanager
def written_atomically(path: Path) -> Iterator[Path]:
    """A hidden name beside `path` to write to, renamed over `path` when the block ends and
    deleted when it fails. Hidden, so that landing/ and ingest never take it for a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        yield partial
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
