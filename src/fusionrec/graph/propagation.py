"""Message passing: LightGCN layer-mean propagation and relation-aware KG attention."""

from __future__ import annotations

import math

import torch
from torch import nn

from fusionrec.graph.adjacency import SparseOperator
from fusionrec.graph.kg import NeighbourTable


def propagate(adjacency: SparseOperator, x: torch.Tensor, layers: int) -> torch.Tensor:
    """LightGCN: ``mean(x, A x, A^2 x, ..., A^L x)``; ``(n, d) -> (n, d)``; ``layers=0`` is ``x``."""
    if layers < 0:
        raise ValueError("layers must be >= 0")
    total, h = x, x
    for _ in range(layers):
        h = adjacency @ h
        total = total + h
    return total / (layers + 1)


class RelationAttention(nn.Module):
    """One KGCN/KGAT-style aggregation step over padded (relation, entity) neighbours.

    The query (a user, or the target entity itself) scores each neighbour by
    ``<q, r + e> / sqrt(d)``, so both the kind of link and the neighbour matter; scores are
    softmax-normalised over the real (unmasked) neighbours and the weighted mean of neighbour
    vectors is combined with the target's own vector (KGCN's "sum" aggregator):
    ``act(W (self + sum_k a_k e_k) + b)``. A target without neighbours keeps ``act(W self + b)``.
    """

    def __init__(self, dim: int, n_relations: int, activation: str = "tanh") -> None:
        super().__init__()
        self.relation = nn.Embedding(n_relations, dim)
        nn.init.normal_(self.relation.weight, std=0.1)
        self.linear = nn.Linear(dim, dim)
        self.activation = {"tanh": torch.tanh, "relu": torch.relu, "none": lambda t: t}[activation]

    def attention(self, query: torch.Tensor, neighbours: torch.Tensor, relations: torch.Tensor,
                  mask: torch.Tensor) -> torch.Tensor:
        """Weights ``(B, k)`` over neighbours; rows with no neighbour are all zero.

        query ``(B, d)``; neighbours ``(B, k, d)``; relations ``(B, k)`` long; mask ``(B, k)``.
        """
        keys = self.relation(relations) + neighbours  # (B, k, d)
        scores = (keys * query.unsqueeze(1)).sum(-1) / math.sqrt(query.shape[-1])  # (B, k)
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return torch.nan_to_num(weights, nan=0.0)  # all-masked rows give NaN; they get nothing

    def forward(self, query: torch.Tensor, own: torch.Tensor, neighbours: torch.Tensor,
                relations: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """query, own ``(B, d)``; neighbours ``(B, k, d)``; relations, mask ``(B, k)`` -> ``(B, d)``."""
        weights = self.attention(query, neighbours, relations, mask)
        message = (weights.unsqueeze(-1) * neighbours).sum(1)  # (B, d)
        return self.activation(self.linear(own + message))


class KGPropagation(nn.Module):
    """``layers`` rounds of :class:`RelationAttention`, each entity querying with its own current
    vector (item-side attention, so the result is user-independent and can be cached for
    retrieval). ``(n_entities, d) -> (n_entities, d)``, or ``(len(targets), d)`` when
    ``targets`` is given: the last round then only updates those entities (the only ones read),
    which is most of the saving for one round on a KG with many non-item entities."""

    def __init__(self, dim: int, n_relations: int, layers: int = 1) -> None:
        super().__init__()
        self.steps = nn.ModuleList(RelationAttention(dim, n_relations) for _ in range(layers))

    @staticmethod
    def _step(step: RelationAttention, x: torch.Tensor, table: NeighbourTable,
              rows: torch.Tensor | None, include_self: bool = True) -> torch.Tensor:
        entity = table.entity if rows is None else table.entity[rows]  # (B, k)
        relation = table.relation if rows is None else table.relation[rows]
        mask = table.mask if rows is None else table.mask[rows]
        own = x if rows is None else x.index_select(0, rows)  # (B, d)
        # index_select's backward (index_add) is much faster than advanced indexing's.
        neighbours = x.index_select(0, entity.reshape(-1)).view(*entity.shape, -1)  # (B, k, d)
        return step(own, own if include_self else torch.zeros_like(own), neighbours, relation,
                    mask)

    def forward(self, x: torch.Tensor, table: NeighbourTable,
                targets: torch.Tensor | None = None, include_self: bool = True) -> torch.Tensor:
        """``include_self=False`` leaves the targets' own vectors out of the last round, so a
        target is described by its neighbours only (its own embedding would be a free
        per-target parameter, i.e. another ID embedding)."""
        for depth, step in enumerate(self.steps):
            last = depth == len(self.steps) - 1
            x = self._step(step, x, table, targets if last else None, include_self or not last)
        if not self.steps and targets is not None:
            return x.index_select(0, targets)
        return x

    def for_query(self, query: torch.Tensor, x: torch.Tensor, targets: torch.Tensor,
                  table: NeighbourTable) -> torch.Tensor:
        """User-specific one-hop aggregation (KGCN): ``query (B, d)`` attends over the neighbours
        of entity ``targets (B,)`` using the first step's parameters; ``-> (B, d)``."""
        step = self.steps[0]
        entity = table.entity[targets]  # (B, k)
        neighbours = x.index_select(0, entity.reshape(-1)).view(*entity.shape, -1)  # (B, k, d)
        return step(query, x[targets], neighbours, table.relation[targets], table.mask[targets])
