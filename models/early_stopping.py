"""When to stop training: the best validation score so far, and how long since it moved.

Two numbers, kept apart on purpose. `best` is the lowest (or highest) score seen, and the
caller keeps that epoch's weights. Patience is measured against a reference which moves
only when a score beats it by `min_improvement` (relative), so that the epoch-to-epoch
wobble of a flattened curve need not keep training going. With `min_improvement` 0 the two
are the same, the classic rule. The demand LSTM uses 1% on its averaged weights' curve,
which is smooth; on the raw weights' curve a 1% threshold cut `medium` short while its big
sellers were still improving (bench/RESULTS.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


@dataclass
class EarlyStopping:
    patience: int  # epochs without a real improvement before stopping
    min_improvement: float = 0.0  # relative: 0.01 means 1% better than the reference
    mode: Literal["min", "max"] = "min"
    best: float | None = None
    best_epoch: int = 0
    reference: float | None = None
    stale: int = 0

    def update(self, epoch: int, score: float) -> bool:
        """Record `epoch`'s score; True when it is the best so far (keep its weights).

        The first score is always the best, even NaN (there is nothing else to keep); a NaN
        after it never improves anything.
        """
        if self.best is None:
            self.best, self.best_epoch, self.reference, self.stale = score, epoch, score, 0
            return True
        if math.isnan(score):
            self.stale += 1
            return False
        if (
            self.reference is None
            or math.isnan(self.reference)
            or self._beats(score, self.reference, self.min_improvement)
        ):
            self.reference, self.stale = score, 0
        else:
            self.stale += 1
        if math.isnan(self.best) or self._beats(score, self.best, 0.0):
            self.best, self.best_epoch = score, epoch
            return True
        return False

    @property
    def should_stop(self) -> bool:
        return self.stale >= self.patience

    def _beats(self, score: float, other: float, margin: float) -> bool:
        if self.mode == "min":
            return score < other - margin * abs(other)
        return score > other + margin * abs(other)
