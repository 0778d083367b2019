"""``social`` source: propagation over user–user friendships together with user–item edges."""

from __future__ import annotations

import torch
from torch import nn

from fusionrec.models.fusion.sources import SourceVectors, TrainingGraph, register_masks


class SocialEncoder(nn.Module):
    """Own user/item tables propagated over ``[[S, R], [R^T, 0]]`` (friends and training items in
    one normalised graph, ``graph.social_bipartite``), so a user's vector absorbs what their
    friends listen to; the item side is the same propagation's item rows. The layer-0 term is
    left out (it would duplicate the ID source). Users without friends are masked out."""

    def __init__(self, graph: TrainingGraph, dim: int, layers: int = 2,
                 init_std: float = 0.1) -> None:
        super().__init__()
        if graph.social is None:
            raise ValueError("SocialEncoder needs a TrainingGraph built with social edges")
        self.n_users, self.layers = graph.n_users, max(layers, 1)
        self.embedding = nn.Embedding(graph.n_users + graph.n_items, dim)  # users then items
        nn.init.normal_(self.embedding.weight, std=init_std)
        has_friend = torch.zeros(graph.n_users, dtype=torch.bool)
        has_friend[graph.social.source] = True
        has_friend[graph.social.target] = True
        register_masks(self, has_friend, torch.ones(graph.n_items))

    def forward(self, graph: TrainingGraph) -> SourceVectors:
        total, h = 0.0, self.embedding.weight
        for _ in range(self.layers):
            h = graph.social_bipartite @ h  # (n_users + n_items, d)
            total = total + h
        x = total / self.layers
        return SourceVectors(x[:self.n_users], x[self.n_users:])
