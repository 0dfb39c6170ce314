"""Reading a file's bytes whether or not they are gzip-compressed: shops often send their
CSV exports as .csv.gz, and Polars reads those as they are, so the Python readers beside it
(the tolerant CSV reader, the Online Retail adapter's encoding check) must too."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"


def open_bytes(path: Path) -> BinaryIO:
    """A file's bytes, decompressed when they are gzip's (known by their first bytes, as
    Polars knows them, whatever the name says)."""
    with path.open("rb") as handle:
        compressed = handle.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else path.open("rb")
