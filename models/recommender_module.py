"""The trained recommender as a torch module, the form MLflow stores and serves.

Kept apart from models/recommender.py because defining an `nn.Module` needs torch at import
time, and the rest of the code imports torch only when it trains.
"""

from __future__ import annotations

import numpy as np
import torch


class MatrixFactorization(torch.nn.Module):
    """score(u, i) = p_u . q_i + b_i; `forward(users)` scores every item for each user."""

    def __init__(self, user_factors: np.ndarray, item_factors: np.ndarray, item_bias: np.ndarray):
        super().__init__()
        self.user_factors = torch.nn.Parameter(torch.as_tensor(user_factors, dtype=torch.float32))
        self.item_factors = torch.nn.Parameter(torch.as_tensor(item_factors, dtype=torch.float32))
        self.item_bias = torch.nn.Parameter(torch.as_tensor(item_bias, dtype=torch.float32))

    def forward(self, users: torch.Tensor) -> torch.Tensor:
        return self.user_factors[users.long()] @ self.item_factors.T + self.item_bias
