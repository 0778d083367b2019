"""Prediction heads over fused user and item vectors (losses live in :mod:`losses`)."""

from __future__ import annotations

import torch
from torch import nn


class CTRHead(nn.Module):
    """Click logit from an MLP over ``[u, i, u * i]``: ``u, i (..., D) -> (...)``."""

    def __init__(self, dim: int, hidden: tuple[int, ...] = (128, 64), dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        width = 3 * dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        user = user.expand_as(item)
        return self.mlp(torch.cat([user, item, user * item], dim=-1)).squeeze(-1)


class RetrievalHead(nn.Module):
    """Dot product plus a per-item bias, so full ranking is one matrix product:
    ``u (..., D), i (..., D) -> (...)``; :meth:`all_items` scores ``(B, D) x (n, D) -> (B, n)``."""

    def __init__(self, n_items: int) -> None:
        super().__init__()
        self.item_bias = nn.Parameter(torch.zeros(n_items))

    def forward(self, user: torch.Tensor, item: torch.Tensor,
                item_index: torch.Tensor) -> torch.Tensor:
        return (user * item).sum(-1) + self.item_bias[item_index]

    def all_items(self, user: torch.Tensor, items: torch.Tensor,
                  item_index: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, D) x (n, D) -> (B, n)``; ``items`` are all items, or those in ``item_index``."""
        bias = self.item_bias if item_index is None else self.item_bias[item_index]
        return user @ items.T + bias
