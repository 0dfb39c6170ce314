"""Early stopping: patience counts real gains only; the kept epoch is the best one seen."""

from __future__ import annotations

import math

from models.early_stopping import EarlyStopping


def run(stopping: EarlyStopping, scores: list[float]) -> int:
    """Feed scores epoch by epoch (from 1); the epoch training stopped after."""
    for epoch, score in enumerate(scores, 1):
        stopping.update(epoch, score)
        if stopping.should_stop:
            return epoch
    return len(scores)


# A curve that falls, then wobbles within 0.5% while creeping down by hair-widths.
FLATTENING = [1.0, 0.8, 0.7, 0.65, 0.649, 0.651, 0.648, 0.650, 0.647, 0.649, 0.646, 0.645]


def test_wobbles_below_the_threshold_do_not_reset_patience() -> None:
    stopping = EarlyStopping(patience=3, min_improvement=0.01)
    stopped = run(stopping, FLATTENING)
    # the last real gain is epoch 4 (0.65 vs 0.70); three epochs without one follow
    assert stopped == 7
    # the weights kept are still the lowest loss seen, even though it was a small gain
    assert (stopping.best, stopping.best_epoch) == (0.648, 7)


def test_without_a_threshold_every_new_low_resets_patience() -> None:
    stopping = EarlyStopping(patience=3)
    assert run(stopping, FLATTENING) == len(FLATTENING)  # never stops: new lows keep coming
    assert (stopping.best, stopping.best_epoch) == (0.645, 12)


def test_maximising_a_score() -> None:
    stopping = EarlyStopping(patience=2, min_improvement=0.05, mode="max")
    assert run(stopping, [0.10, 0.20, 0.205, 0.21, 0.30]) == 4
    assert (stopping.best, stopping.best_epoch) == (0.21, 4)


def test_nan_scores_never_improve_but_the_first_epoch_is_kept() -> None:
    stopping = EarlyStopping(patience=2, min_improvement=0.01)
    assert stopping.update(1, math.nan)  # nothing else to keep
    assert not stopping.update(2, math.nan)
    assert stopping.should_stop is False
    assert stopping.update(3, 0.5)  # a real number beats a NaN best
    assert stopping.stale == 0
    assert not stopping.update(4, math.nan)
    assert not stopping.update(5, math.nan)
    assert stopping.should_stop and stopping.best_epoch == 3
