"""File IO shared by the readers and writers of landing, archive and query files.

- `open_bytes`: a file's bytes whether or not they are gzip-compressed. Shops often send
  their CSV exports as .csv.gz, and Polars reads those as they are, so the Python readers
  beside it (the tolerant CSV reader, the Online Retail adapter's encoding check) must too.
- `gzip_damage`: what is wrong with a gzip file that cannot be read to its end. An upload
  or copy cut short leaves a .csv.gz whose first part reads fine, so its header passes and
  the readers fail deep in the file with an error that names neither the file nor the fault.
- `sqlite_damage`: what SQLite finds wrong with a database file (the embedded Prefect and
  MLflow stores), for `run` and `doctor`.
- `written_atomically`: a file appears under its name only once it is whole, so a killed
  or failed write never leaves half a file that something would read as complete (an
  archive file a row points to, a landing file, a query's --out file).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from nightshift.errors import ContractError

GZIP_MAGIC = b"\x1f\x8b"


def open_bytes(path: Path) -> BinaryIO:
    """A file's bytes, decompressed when they are gzip's (known by their first bytes, as
    Polars knows them, whatever the name says)."""
    with path.open("rb") as handle:
        compressed = handle.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else path.open("rb")


def gzip_damage(path: Path) -> str | None:
    """Why a gzip-compressed file cannot be read to its end, or None when it is not gzip's or
    reads whole. Decompresses the whole file, so it is only asked once a read has failed."""
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        if handle.read(2) != GZIP_MAGIC:
            return None
    read = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read1(1 << 16):
                read += len(chunk)
    except EOFError:
        return (
            f"its gzip data ends early, after {read:,} bytes of text (an upload or copy cut short?)"
        )
    except (gzip.BadGzipFile, zlib.error) as exc:
        return f"its gzip data is damaged ({exc})"
    return None


@contextmanager
def gzip_damage_named(path: Path, source_file: str) -> Iterator[None]:
    """Turn the error a reader raises on a damaged gzip file (Polars: OSError 'unexpected end
    of file'; Python's gzip: EOFError) into the contract's `readable` error, naming the file
    and the damage. Any other error (a full disk while the archive is written) goes on as it
    was: the file is only blamed once it has been read again and found damaged."""
    try:
        yield
    except (OSError, EOFError, zlib.error) as exc:
        damage = gzip_damage(path)
        if damage is None:
            raise
        raise ContractError(
            source_file, "readable", f"cannot be read: {damage}; send the file again"
        ) from exc


def sqlite_damage(database: Path) -> str | None:
    """What SQLite finds wrong with a database file (`quick_check`: every page, not the
    indexes' contents, well under a second for a year of nights), or None."""
    import sqlite3

    try:
        con = sqlite3.connect(database)
        try:
            (verdict,) = con.execute("pragma quick_check(1)").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None if verdict == "ok" else str(verdict)


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
