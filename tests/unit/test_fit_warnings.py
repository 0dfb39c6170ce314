"""The statistical fits keep statsmodels' noise to themselves without touching any other
thread's warnings: the branches fit in threads of one process (models.fit_warnings)."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable

import numpy as np
import pytest

from models.inventory import InventoryConfig, fit_demand_model
from models.pricing import ElasticityConfig, fit_sku_elasticity


class OtherThreadsWarning(UserWarning):
    """What another branch's code might say while a fit runs."""


def ar1_with_a_shift(seed: int) -> np.ndarray:
    """A smooth series whose ARIMA fits need many optimiser steps (a level shift halfway)."""
    rng = np.random.default_rng(seed)
    x = np.empty(365)
    x[0] = 20.0
    for t in range(1, 365):
        x[t] = 20 + 0.6 * (x[t - 1] - 20) + rng.normal(0, 3)
    return x + np.where(np.arange(365) > 180, 8.0, 0.0)


def inventory_fits() -> None:
    for seed in range(3):
        fit_demand_model(ar1_with_a_shift(seed), InventoryConfig())


def elasticity_fits() -> None:
    rng = np.random.default_rng(5)
    days = np.arange(730)
    price = 10 * rng.choice([0.8, 0.9, 1.0, 1.1, 1.2], size=days.size // 30 + 1).repeat(30)[:730]
    category = 200 * (1 + 0.5 * np.sin(2 * np.pi * days / 365))
    for _ in range(20):
        units = rng.poisson(0.02 * category * (price / 10) ** -2.2)
        fit_sku_elasticity(units, price, category, days, ElasticityConfig())


@pytest.mark.parametrize("fits", [inventory_fits, elasticity_fits], ids=["sarima", "glm"])
def test_a_fit_in_one_thread_does_not_swallow_another_threads_warnings(
    fits: Callable[[], None],
) -> None:
    """Fits used to wrap themselves in `catch_warnings(record=True)`, which hooks the whole
    process: a warning another thread raised meanwhile went into the fit's list, unseen."""
    shown: list[warnings.WarningMessage] = []
    # the test's own filters and hook, set and put back by this thread alone
    with warnings.catch_warnings():
        warnings.simplefilter("always", OtherThreadsWarning)
        warnings.showwarning = lambda message, category, *args, **kwargs: shown.append(category)
        fitting = threading.Thread(target=fits)
        fitting.start()
        raised = 0
        while fitting.is_alive():
            warnings.warn("a branch's own warning", OtherThreadsWarning, stacklevel=1)
            raised += 1
            time.sleep(0.0005)  # let the fit have the interpreter most of the time
        fitting.join()
        after = list(warnings.filters)
    assert raised > 0
    assert shown.count(OtherThreadsWarning) == raised, "the fit swallowed warnings it did not raise"
    # and the fits left the filters as they found them, apart from their own ignores
    assert ("always", None, OtherThreadsWarning, None, 0) in after


def test_a_sarima_that_does_not_converge_falls_back_to_the_mean_quietly() -> None:
    """One optimiser step cannot converge: each candidate is rejected on its own flag, the
    SKU falls back to the mean with the reason, and no statsmodels warning reaches the log."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = fit_demand_model(ar1_with_a_shift(0), InventoryConfig(max_iter=1))
        converged = fit_demand_model(ar1_with_a_shift(0), InventoryConfig())
    assert model.model == "mean" and not model.converged
    assert model.fallback_reason == "sarima failed: 4 candidates did not converge"
    assert converged.model.startswith("sarima") and converged.converged
    assert [w for w in caught if w.category.__module__.startswith("statsmodels")] == []
