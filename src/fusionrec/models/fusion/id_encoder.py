"""``interactions`` source: collaborative-filtering embeddings propagated over the training graph."""

from __future__ import annotations

import torch
from torch import nn

from fusionrec.graph.propagation import propagate
from fusionrec.models.fusion.sources import SourceVectors, TrainingGraph, register_masks


class IDEncoder(nn.Module):
    """Free user and item embeddings smoothed LightGCN-style (layer mean over ``layers`` hops of
    the symmetric-normalised training bipartite graph); ``layers=0`` is plain MF embeddings."""

    def __init__(self, n_users: int, n_items: int, dim: int, layers: int = 2,
                 init_std: float = 0.1) -> None:
        super().__init__()
        self.n_users, self.layers = n_users, layers
        self.embedding = nn.Embedding(n_users + n_items, dim)  # users then items
        nn.init.normal_(self.embedding.weight, std=init_std)
        register_masks(self, torch.ones(n_users), torch.ones(n_items))

    def forward(self, graph: TrainingGraph) -> SourceVectors:
        x = propagate(graph.bipartite, self.embedding.weight, self.layers)  # (n_u + n_i, d)
        return SourceVectors(x[:self.n_users], x[self.n_users:])
