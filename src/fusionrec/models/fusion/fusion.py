"""Fusing per-source vectors into one vector per user or item, and source dropout.

Every fusion takes ``x (B, S, d)`` (one vector per source) and ``mask (B, S)`` (False where a
source is missing or dropped for that row) and returns ``(B, out_dim)``; ``weights(x, mask)``
gives the ``(B, S)`` share of each source (rows sum to 1 over kept sources), used for
explanations. A row with no kept source fuses to zeros.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class SourceDropout(nn.Module):
    """In training, drop each available source of each row with probability ``p`` (one for
    every source, or one per source); a row that would lose every source keeps its available
    ones. Identity in eval mode."""

    def __init__(self, p: float | Sequence[float]) -> None:
        super().__init__()
        self.p = p if isinstance(p, (int, float)) else tuple(float(x) for x in p)

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        p = self.p
        if not self.training or (max(p) if isinstance(p, tuple) else p) <= 0:
            return mask
        if isinstance(p, tuple):  # (S,) broadcast over the rows
            p = torch.tensor(p, device=mask.device)
        kept = mask & (torch.rand(mask.shape, device=mask.device) >= p)
        emptied = ~kept.any(dim=1, keepdim=True)
        return torch.where(emptied, mask, kept)


def _masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = torch.softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)
    return torch.nan_to_num(weights, nan=0.0)  # all-masked rows


class ConcatFusion(nn.Module):
    """``[x_1 * c, ..., x_S * c]`` with missing sources zeroed and ``c = S_avail / S_kept``
    (inverted-dropout scaling), so the expected magnitude matches inference; ``out = S * d``."""

    def __init__(self, n_sources: int, dim: int) -> None:
        super().__init__()
        self.out_dim = n_sources * dim

    def weights(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        kept = mask.float()
        return kept / kept.sum(dim=1, keepdim=True).clamp(min=1.0)

    def forward(self, x: torch.Tensor, mask: torch.Tensor,
                available: torch.Tensor | None = None) -> torch.Tensor:
        kept = mask.float()  # (B, S)
        avail = (available if available is not None else mask).float().sum(1, keepdim=True)
        scale = avail / kept.sum(dim=1, keepdim=True).clamp(min=1.0)  # (B, 1)
        out = x * (kept * scale).unsqueeze(-1)  # (B, S, d)
        return out.flatten(1)  # (B, S * d)


class WeightedFusion(nn.Module):
    """``sum_s w_s x_s`` with one learned logit per source, softmax-normalised over the sources
    a row keeps; ``out = d``."""

    def __init__(self, n_sources: int, dim: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n_sources))
        self.out_dim = dim

    def weights(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return _masked_softmax(self.logits.expand(mask.shape), mask)

    def forward(self, x: torch.Tensor, mask: torch.Tensor,
                available: torch.Tensor | None = None) -> torch.Tensor:
        return torch.einsum("bs,bsd->bd", self.weights(x, mask), x)


class GatedFusion(nn.Module):
    """Attention gate: ``a_s = v . tanh(W x_s + b) + bias_s`` per row and source, softmax over the
    kept sources, ``out = sum_s a_s x_s`` (``d``). The weights differ per user/item, which is
    what ``source_weights`` reports for explanations."""

    def __init__(self, n_sources: int, dim: int, hidden: int = 32) -> None:
        super().__init__()
        self.project = nn.Linear(dim, hidden)
        self.score = nn.Linear(hidden, 1, bias=False)
        self.source_bias = nn.Parameter(torch.zeros(n_sources))
        self.out_dim = dim

    def weights(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.score(torch.tanh(self.project(x))).squeeze(-1)  # (B, S)
        return _masked_softmax(logits + self.source_bias, mask)

    def forward(self, x: torch.Tensor, mask: torch.Tensor,
                available: torch.Tensor | None = None) -> torch.Tensor:
        return torch.einsum("bs,bsd->bd", self.weights(x, mask), x)


def make_fusion(kind: str, n_sources: int, dim: int) -> nn.Module:
    classes = {"concat": ConcatFusion, "weighted": WeightedFusion, "gated": GatedFusion}
    if kind not in classes:
        raise ValueError(f"unknown fusion {kind!r}; expected one of {sorted(classes)}")
    return classes[kind](n_sources, dim)
