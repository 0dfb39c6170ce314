"""What a night deletes to keep the home from growing without bound: one rule for the
registered model versions (tasks/tracking.py) and the export partitions (tasks/publish.py)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def beyond_newest(
    items: Iterable[T],
    keep: int,
    protected: Collection[T] = (),
    key: Callable[[T], Any] | None = None,
) -> list[T]:
    """The items beyond the newest `keep` (ordered by `key`), oldest first, except the
    protected ones (a champion, the night just run); `keep` 0 or less deletes nothing."""
    if keep <= 0:
        return []
    newest_first = sorted(items, key=key, reverse=True)
    return sorted((item for item in newest_first[keep:] if item not in protected), key=key)
