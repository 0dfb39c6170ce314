"""The demand forecaster against planted seasonality and elasticity, and its baselines."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from models.demand import (
    DemandConfig,
    DemandPanel,
    backtest_and_forecast,
    backtest_origins,
    calendar_features,
    fit_demand,
    forecast_metrics,
    seasonal_naive,
    served_module,
    validation_losses,
    widen,
    window_features,
)

START = date(2023, 1, 2)  # a Monday
CONFIG = DemandConfig(epochs=8, windows_per_epoch=4096, patience=3, hidden=32)


def planted_panel(n_series: int = 48, n_days: int = 420, seed: int = 0) -> DemandPanel:
    """Poisson demand = level x weekly shape x price^elasticity, with step price changes.
    The last two SKUs are new: one started 10 days ago, one never sold."""
    rng = np.random.default_rng(seed)
    level = np.exp(rng.uniform(np.log(0.5), np.log(30), n_series))
    weekly = np.array([1.0, 1.1, 1.1, 1.2, 1.4, 0.6, 0.5])
    elasticity = rng.uniform(-2.5, -0.8, n_series)
    steps = rng.integers(0, 6, (n_series, n_days // 28 + 1))
    price_factor = np.array([1.0, 0.8, 0.9, 1.1, 1.15, 0.85])[steps].repeat(28, axis=1)[:, :n_days]
    dow = (np.arange(n_days) + START.weekday()) % 7
    mean = level[:, None] * weekly[dow][None, :] * price_factor ** elasticity[:, None]
    units = rng.poisson(mean).astype(float)
    first_day = np.zeros(n_series, dtype=np.int64)
    first_day[-2], first_day[-1] = n_days - 10, n_days
    units[-2, : n_days - 10] = 0
    units[-1] = 0
    return DemandPanel(
        start=START,
        units=units,
        price=10.0 * price_factor,
        first_day=first_day,
        category=np.arange(n_series) % 3,
    )


@pytest.fixture(scope="module")
def night():
    panel = planted_panel()
    return panel, backtest_and_forecast(panel, CONFIG, gate_margin=0.02, arima_sample=4)


def test_lstm_beats_seasonal_naive_on_the_backtest(night) -> None:
    _, outcome = night
    lstm, naive = outcome.metrics["lstm"], outcome.metrics["seasonal_naive"]
    assert lstm["mase"] < 0.9 * naive["mase"]
    assert lstm["wape"] < naive["wape"]
    assert outcome.promoted
    assert {"arima", "lstm_on_arima_sample"} <= set(outcome.metrics)
    assert {"lstm/high", "lstm/mid", "lstm/low", "seasonal_naive/low"} <= set(outcome.tier_metrics)


def test_intervals_are_calibrated_and_never_cross(night) -> None:
    _, outcome = night
    assert 0.65 <= outcome.metrics["lstm"]["coverage"] <= 0.95
    fan = outcome.forecast
    assert (fan >= 0).all()
    assert (fan[..., 0] <= fan[..., 1] + 1e-9).all() and (fan[..., 1] <= fan[..., 2] + 1e-9).all()


def test_the_served_module_carries_the_calibrated_intervals() -> None:
    """The module registered in MLflow widens p10/p90 as the published forecast does."""
    import torch

    from models.demand import FittedDemand, demand_module

    config = DemandConfig(hidden=8)
    state = {k: v.numpy() for k, v in demand_module(config).state_dict().items()}
    fitted = FittedDemand(state, config, interval_scale=2.5)
    x = torch.rand(4, config.input_days + config.horizon, 8)
    with torch.no_grad():
        bare = demand_module(config, state)(x).numpy()
        served = served_module(fitted)(x).numpy()
    np.testing.assert_allclose(served, widen(bare, 2.5), rtol=1e-6, atol=1e-6)
    assert (served[..., 2] - served[..., 0] > bare[..., 2] - bare[..., 0]).all()


def test_new_skus_get_a_flagged_category_profile(night) -> None:
    panel, outcome = night
    assert outcome.is_fallback.tolist() == [False] * (panel.units.shape[0] - 2) + [True, True]
    never_sold = outcome.forecast[-1]
    assert np.isfinite(never_sold).all() and never_sold[:, 1].sum() > 0
    same_category = panel.category == panel.category[-1]
    recent = panel.units[same_category][:-2, -28:].mean()
    assert never_sold[:, 1].mean() == pytest.approx(recent, rel=0.35)


def test_the_forecast_follows_the_weekly_shape(night) -> None:
    panel, outcome = night
    days = [panel.start + timedelta(days=panel.n_days + h) for h in range(28)]
    weekend = np.array([d.weekday() >= 5 for d in days])
    p50 = outcome.forecast[:-2, :, 1]
    assert p50[:, weekend].mean() < 0.7 * p50[:, ~weekend].mean()  # planted: ~0.45x


def test_training_is_deterministic_for_a_seed() -> None:
    panel = planted_panel(n_series=12, n_days=200)
    config = DemandConfig(epochs=1, windows_per_epoch=512, hidden=8)
    a = fit_demand(panel, 172, config)
    b = fit_demand(panel, 172, config)
    assert all(np.array_equal(a.state[k], b.state[k]) for k in a.state)


def test_windows_are_scaled_and_hide_the_future() -> None:
    panel = planted_panel(n_series=4, n_days=120)
    units = np.concatenate([panel.units, np.zeros((4, 28))], axis=1)
    price = np.concatenate([panel.price, np.repeat(panel.price[:, -1:], 28, 1)], axis=1)
    calendar = calendar_features(panel.dates(28), frozenset())
    x, target, scale = window_features(
        units, price, calendar, panel.first_day, np.array([0, 1]), np.array([80, 90]), 56, 28
    )
    assert x.shape == (2, 84, 8) and target.shape == (2, 28)
    assert (x[:, 56:, 0] == 0).all() and (x[:, 56:, 1] == 0).all()  # no peeking at targets
    expected = np.log1p(panel.units[0, 80:108]) / scale[0]
    assert np.allclose(target[0], expected)
    assert scale[0] == pytest.approx(1 + np.log1p(panel.units[0, 24:80]).mean(), rel=1e-5)


def test_seasonal_naive_repeats_last_week_and_metrics_are_hand_checked() -> None:
    panel = planted_panel(n_series=2, n_days=100)
    fan = seasonal_naive(panel, np.array([0]), 70, 14)
    assert np.array_equal(fan[0, :7, 1], panel.units[0, 63:70])
    assert np.array_equal(fan[0, 7:, 1], panel.units[0, 63:70])
    forecast = np.array([[[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]]])
    metrics = forecast_metrics(forecast, np.array([[1.0, 4.0]]), np.array([2.0]))
    assert metrics["mase"] == pytest.approx((0 + 2) / 2 / 2)
    assert metrics["wape"] == pytest.approx(2 / 5)
    assert metrics["coverage"] == pytest.approx(0.5)


def test_backtest_origins_cover_the_last_horizon() -> None:
    assert backtest_origins(400, 28) == [372, 386]


def test_too_short_a_history_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="needs at least"):
        backtest_and_forecast(planted_panel(n_series=4, n_days=60), CONFIG, 0.02)


def test_a_model_export_in_another_thread_leaves_a_fit_unchanged() -> None:
    """torch.export (MLflow's default model format) flips torch's process-wide oneDNN flag
    while it traces; without TORCH_BACKENDS, an LSTM fit running meanwhile in another thread
    took the plain kernels for some steps and its weights differed in the last bits."""
    import threading

    import torch

    from models.device import TORCH_BACKENDS
    from models.recommender_module import MatrixFactorization

    panel = planted_panel(n_series=12, n_days=200)
    config = DemandConfig(epochs=3, windows_per_epoch=1024, hidden=16, patience=3)
    alone = fit_demand(panel, 172, config)
    module = MatrixFactorization(np.ones((5, 4), np.float32), np.ones((6, 4), np.float32), np.zeros(6, np.float32))  # fmt: skip
    stop = threading.Event()
    exports = 0

    def export_repeatedly() -> None:
        nonlocal exports
        while not stop.is_set():
            with TORCH_BACKENDS.exclusive():
                torch.export.export(module, (torch.arange(3),))
            exports += 1

    exporter = threading.Thread(target=export_repeatedly)
    exporter.start()
    try:
        beside = [fit_demand(panel, 172, config) for _ in range(2)]
    finally:
        stop.set()
        exporter.join()
    assert exports >= 2  # the exports did run while the fits did
    for fitted in beside:
        assert all(np.array_equal(alone.state[k], fitted.state[k]) for k in alone.state)


def test_validation_losses_in_scaled_space_and_in_units() -> None:
    # one window, one day: scale 2 maps the scaled targets back through expm1(y * 2)
    target = np.array([[np.log1p(9.0) / 2]])  # 9 units
    scale = np.array([2.0])
    exact = np.repeat(target[..., None], 3, axis=2)
    assert validation_losses(exact, target, scale) == (0.0, 0.0)
    high = np.full((1, 1, 3), np.log1p(19.0) / 2)  # 19 units everywhere: 10 over
    scaled, units = validation_losses(high, target, scale)
    # pinball of an over-forecast is (1 - q) x error, averaged over q = 0.1, 0.5, 0.9
    assert units == pytest.approx(10.0 * (0.9 + 0.5 + 0.1) / 3)
    assert scaled == pytest.approx((np.log1p(19.0) - np.log1p(9.0)) / 2 * 0.5)


def test_a_fit_without_validation_series_keeps_its_first_epoch() -> None:
    # every SKU starts too late to have min_history_days before the validation origin
    panel = planted_panel(n_series=6, n_days=200)
    late = DemandPanel(
        panel.start, panel.units, panel.price, np.full(6, 150, dtype=np.int64), panel.category
    )
    fitted = fit_demand(
        late, 172, DemandConfig(epochs=3, windows_per_epoch=256, hidden=8, patience=1)
    )
    assert np.isnan(fitted.history[0]["val_pinball"]) and fitted.best_epoch == 1
    assert len(fitted.history) == 2  # patience 1: one epoch without a (non-NaN) gain


def test_the_served_weights_are_the_warmed_up_average_of_the_trained_ones() -> None:
    # one optimizer step: the average moves from the initial weights towards the trained
    # ones by 1 - min(decay, (1 + 1) / (10 + 1)); training itself is the same either way
    from models.demand import demand_module

    panel = planted_panel(n_series=12, n_days=200)
    raw_config = DemandConfig(
        epochs=1, windows_per_epoch=512, batch_size=512, hidden=8, ema_decay=0
    )
    raw = fit_demand(panel, 172, raw_config)
    averaged = fit_demand(panel, 172, DemandConfig(**{**raw_config.__dict__, "ema_decay": 0.5}))
    initial = {k: v.numpy() for k, v in demand_module(raw_config).state_dict().items()}
    decay = 2 / 11
    for name, trained in raw.state.items():
        assert not np.allclose(trained, initial[name])  # the step moved every tensor
        expected = decay * initial[name] + (1 - decay) * trained
        np.testing.assert_allclose(averaged.state[name], expected, rtol=1e-5, atol=1e-6)
