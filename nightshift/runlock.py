"""One run at a time per home.

Every run writes the same warehouse and publishes the same marts, so two runs on one home
(the schedule firing while someone retrains from the UI, two backfills, a CLI run beside a
served deployment) must take turns. Deployment concurrency limits guard one deployment;
this lock guards the home itself, whatever started the run. It is an OS file lock
(`flock`): the kernel drops it when the holder dies, even by kill -9, so a crashed run never
leaves the home locked.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from nightshift.errors import NightshiftError


class HomeBusyError(NightshiftError):
    """Another run held the home for longer than the configured wait."""


def lock_holder(path: Path) -> str:
    """Who holds (or last held) the lock, as written by `home_lock`, for messages."""
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another run"
    return f"run {info.get('label', '?')} (pid {info.get('pid', '?')})"


@contextmanager
def home_lock(
    path: Path,
    label: str,
    timeout_seconds: float,
    on_wait: Callable[[str], None] | None = None,
    poll_seconds: float = 1.0,
) -> Iterator[None]:
    """Hold the home's run lock for the block, waiting up to `timeout_seconds` for it.

    `on_wait` is told once who holds it, so a waiting run says why it is not starting.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_seconds
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and on_wait is not None:
                    on_wait(lock_holder(path))
                    told = True
                if time.monotonic() >= deadline:
                    raise HomeBusyError(
                        f"{path.parent} is busy: {lock_holder(path)} has held {path.name} for "
                        f"over {timeout_seconds:.0f} s (NIGHTSHIFT_LOCK_TIMEOUT_SECONDS)"
                    ) from None
                time.sleep(poll_seconds)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"label": label, "pid": os.getpid()}).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
