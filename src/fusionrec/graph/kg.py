"""Knowledge-graph edges in dense indices, and fixed-size neighbour tables for aggregation.

Items attach to the graph through ``KnowledgeGraph.link_item/link_entity``. An item with no link
gets a fresh entity of its own (appended after the KG's entities), so every item has exactly one
entity node and an unlinked item simply has no neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fusionrec.data.schema import KnowledgeGraph
from fusionrec.graph.adjacency import index_tensor


@dataclass(frozen=True)
class KGEdges:
    """Directed (head, relation, tail) edges over ``n_entities`` nodes; ``item_entity[i]`` is the
    entity node of item ``i``."""

    head: torch.Tensor  # (n_edges,) long
    relation: torch.Tensor  # (n_edges,) long
    tail: torch.Tensor  # (n_edges,) long
    n_entities: int
    n_relations: int
    item_entity: torch.Tensor  # (n_items,) long

    def degree(self) -> torch.Tensor:
        """Out-degree of every entity, ``(n_entities,)``."""
        return torch.bincount(self.head, minlength=self.n_entities)


def kg_edges(kg: KnowledgeGraph, n_items: int, inverse: str = "same") -> KGEdges:
    """Edges of ``kg`` with reverse edges added so that information flows both ways.

    ``inverse="same"`` gives a reverse edge the relation of its forward edge (KGCN treats the KG
    as undirected); ``"new"`` gives it relation ``r + n_relations``; ``"none"`` adds no reverse.
    """
    head = index_tensor(kg.head)
    rel = index_tensor(kg.relation)
    tail = index_tensor(kg.tail)
    n_rel = len(kg.relations)
    if inverse == "same":
        head, tail, rel = torch.cat([head, tail]), torch.cat([tail, head]), torch.cat([rel, rel])
    elif inverse == "new":
        head, tail = torch.cat([head, tail]), torch.cat([tail, head])
        rel = torch.cat([rel, rel + n_rel])
        n_rel *= 2
    elif inverse != "none":
        raise ValueError(f"unknown inverse mode {inverse!r}; expected same, new or none")
    n_entities = len(kg.entities)
    item_entity = torch.full((n_items,), -1, dtype=torch.long)
    item_entity[index_tensor(kg.link_item)] = index_tensor(kg.link_entity)
    unlinked = torch.nonzero(item_entity < 0).flatten()
    item_entity[unlinked] = n_entities + torch.arange(len(unlinked))
    # Drop self-loops and repeated triples: they only re-weight a node's own message.
    keep = head != tail
    triples = torch.unique(torch.stack([head[keep], rel[keep], tail[keep]]), dim=1)
    return KGEdges(triples[0], triples[1], triples[2], n_entities + len(unlinked), n_rel,
                   item_entity)


@dataclass(frozen=True)
class NeighbourTable:
    """Up to ``k`` neighbours per entity, padded: ``mask`` is False where a slot is empty."""

    entity: torch.Tensor  # (n_entities, k) long, 0 where padded
    relation: torch.Tensor  # (n_entities, k) long, 0 where padded
    mask: torch.Tensor  # (n_entities, k) bool


def neighbour_table(edges: KGEdges, k: int, seed: int = 0) -> NeighbourTable:
    """Sample at most ``k`` out-neighbours per entity without replacement (all of them when the
    degree is at most ``k``). Fixed once per fit, as in KGCN, so hubs stay cheap."""
    if k < 1:
        raise ValueError("k must be >= 1")
    generator = torch.Generator().manual_seed(seed)
    # Shuffle edges, then stable-sort by head: each head's edges come out in random order.
    perm = torch.randperm(len(edges.head), generator=generator)
    order = perm[torch.argsort(edges.head[perm], stable=True)]
    head = edges.head[order]
    counts = torch.bincount(head, minlength=edges.n_entities)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(head)) - starts[head]  # rank of an edge within its head
    take = slot < k
    entity = torch.zeros((edges.n_entities, k), dtype=torch.long)
    relation = torch.zeros((edges.n_entities, k), dtype=torch.long)
    mask = torch.zeros((edges.n_entities, k), dtype=torch.bool)
    entity[head[take], slot[take]] = edges.tail[order][take]
    relation[head[take], slot[take]] = edges.relation[order][take]
    mask[head[take], slot[take]] = True
    return NeighbourTable(entity, relation, mask)
