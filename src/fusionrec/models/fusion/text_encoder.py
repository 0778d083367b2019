"""``item_text`` source: frozen LM embeddings mapped into the model space by a trainable adapter."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fusionrec.models.fusion.sources import SourceVectors, TrainingGraph, register_masks


def _float_tensor(values) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values.detach().float().clone()
    return torch.from_numpy(np.array(values, dtype=np.float32))  # a copy: inputs may be read-only


class TextAdapter(nn.Module):
    """``(n, d_lm) -> (n, d)``: LayerNorm then a two-layer MLP (or one linear map). The LM stays
    frozen; only this projection learns, so the cost is independent of the LM size."""

    def __init__(self, in_dim: int, dim: int, hidden: int | None = None) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        if hidden:
            self.project = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(),
                                         nn.Linear(hidden, dim))
        else:
            self.project = nn.Linear(in_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.norm(x))


class TextEncoder(nn.Module):
    """Item vector = adapter(item LM embedding). User vector = the mean of the user's training
    items' text vectors (``with_profile``), plus adapter(user LM embedding) when ``user_text``
    (a textualised user) is given. Both sides share the adapter, so they live in one space.
    Rows whose LM vector is all zero (no text) are masked out."""

    def __init__(self, item_text, user_text, graph: TrainingGraph, dim: int,
                 hidden: int | None = 128, with_profile: bool = True) -> None:
        super().__init__()
        item = _float_tensor(item_text)  # (n_items, d_lm)
        if item.shape[0] != graph.n_items:
            raise ValueError(f"item text features have {item.shape[0]} rows for "
                             f"{graph.n_items} items")
        self.register_buffer("item_text", item, persistent=False)
        user = None if user_text is None else _float_tensor(user_text)
        if user is not None and user.shape != (graph.n_users, item.shape[1]):
            raise ValueError(f"user text features must be ({graph.n_users}, {item.shape[1]}), "
                             f"got {tuple(user.shape)}")
        self.register_buffer("user_text", user, persistent=False)
        if user is None and not with_profile:
            raise ValueError("TextEncoder needs user_text or with_profile")
        self.with_profile = with_profile
        self.adapter = TextAdapter(item.shape[1], dim, hidden)
        item_mask = item.abs().sum(1) > 0
        user_mask = torch.zeros(graph.n_users, dtype=torch.bool)
        if user is not None:
            user_mask |= user.abs().sum(1) > 0
        if with_profile:
            user_mask |= (graph.user_items @ item_mask.float()[:, None]).squeeze(1) > 0
        register_masks(self, user_mask, item_mask)

    def forward(self, graph: TrainingGraph) -> SourceVectors:
        item = self.adapter(self.item_text) * self.item_mask[:, None]  # (n_items, d)
        user = graph.user_items @ item if self.with_profile else 0.0  # (n_users, d)
        if self.user_text is not None:
            user = user + self.adapter(self.user_text)
        return SourceVectors(user, item)
