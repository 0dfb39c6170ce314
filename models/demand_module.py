"""The demand network as a torch module (kept apart so models/demand.py imports torch lazily)."""

from __future__ import annotations

import torch


class DemandLSTM(torch.nn.Module):
    """LSTM encoder over the input days, MLP decoder for every horizon day at once.

    forward(x): x is (batch, input_days + horizon, features) as built by
    `models.demand.window_features`; returns (batch, horizon, 3) scaled p10/p50/p90 with
    p10 <= p50 <= p90 (p50 plus/minus softplus gaps).
    """

    def __init__(self, n_features: int, hidden: int, input_days: int, horizon: int):
        super().__init__()
        self.input_days, self.horizon = input_days, horizon
        self.encoder = torch.nn.LSTM(n_features, hidden, batch_first=True)
        known = n_features - 2  # calendar and price are known over the horizon
        self.decoder = torch.nn.Sequential(
            torch.nn.Linear(hidden + horizon * known, 2 * hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(2 * hidden, horizon * 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (state, _) = self.encoder(x[:, : self.input_days])
        future = x[:, self.input_days :, 2:].flatten(1)
        raw = self.decoder(torch.cat([state[-1], future], dim=1)).view(-1, self.horizon, 3)
        gaps = torch.nn.functional.softplus(raw[..., [0, 2]])
        median = raw[..., 1]
        return torch.stack([median - gaps[..., 0], median, median + gaps[..., 1]], dim=-1)


class CalibratedDemand(torch.nn.Module):
    """The forecaster as it is served: a DemandLSTM whose p10 and p90 gaps around p50 are
    widened by the factor calibrated on held-out windows (`models.demand.widen`).

    The factor is a buffer, so the module registered in MLflow forecasts exactly what the
    night published; registering the bare network gave narrower intervals than published.
    """

    def __init__(self, network: DemandLSTM, interval_scale: float):
        super().__init__()
        self.network = network
        self.register_buffer("interval_scale", torch.tensor(float(interval_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        quantiles = self.network(x)
        median = quantiles[..., 1]
        low = median - self.interval_scale * (median - quantiles[..., 0])
        high = median + self.interval_scale * (quantiles[..., 2] - median)
        return torch.stack([low, median, high], dim=-1)
