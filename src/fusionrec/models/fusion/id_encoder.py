"""``interactions`` source: collaborative-filtering embeddings propagated over the training graph."""

from __future__ import annotations

import torch
from torch import nn

from fusionrec.graph.propagation import propagate
from fusionrec.models.fusion.sources import SourceVectors, TrainingGraph, register_masks


class IDEncoder(nn.Module):
    """Free user and item embeddings smoothed LightGCN-style (layer mean over ``layers`` hops of
    the symmetric-normalised training bipartite graph); ``layers=0`` is plain MF embeddings.

    ``graph`` given (``mask_cold_ids``): users and items without a training interaction count
    as lacking this source. Their vectors never moved off the random init (no edge to smooth
    them, no positive to train them), so fused in they are noise: on KGCN's Last.FM CTR split
    23% of items have none, and every uniform negative is drawn from all items.
    """

    def __init__(self, n_users: int, n_items: int, dim: int, layers: int = 2,
                 init_std: float = 0.1, graph: TrainingGraph | None = None) -> None:
        super().__init__()
        self.n_users, self.layers = n_users, layers
        self.embedding = nn.Embedding(n_users + n_items, dim)  # users then items
        nn.init.normal_(self.embedding.weight, std=init_std)
        if graph is None:
            register_masks(self, torch.ones(n_users), torch.ones(n_items))
        else:
            register_masks(self, graph.user_has_items().numpy(), graph.item_has_users().numpy())

    def forward(self, graph: TrainingGraph) -> SourceVectors:
        x = propagate(graph.bipartite, self.embedding.weight, self.layers)  # (n_u + n_i, d)
        return SourceVectors(x[:self.n_users], x[self.n_users:])
