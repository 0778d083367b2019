"""``kg`` source: entity embeddings refined by relation-aware attention over KG neighbours."""

from __future__ import annotations

from torch import nn

from fusionrec.data.schema import KnowledgeGraph
from fusionrec.devices import map_tensors
from fusionrec.graph.kg import kg_edges, neighbour_table
from fusionrec.graph.propagation import KGPropagation
from fusionrec.models.fusion.sources import SourceVectors, TrainingGraph, register_masks


class KGEncoder(nn.Module):
    """Item vector = what ``layers`` rounds of :class:`KGPropagation` bring to the item's entity
    from its neighbours (each entity attends over up to ``neighbours`` sampled (relation, entity)
    pairs; the item's own entity vector is left out); user vector = mean of
    the user's training items' KG vectors. Items with no KG neighbour are masked out, and so are
    users none of whose training items has one."""

    def __init__(self, kg: KnowledgeGraph, graph: TrainingGraph, dim: int, layers: int = 1,
                 neighbours: int = 8, init_std: float = 0.1, seed: int = 0) -> None:
        super().__init__()
        edges = kg_edges(kg, graph.n_items)
        self.table = neighbour_table(edges, neighbours, seed=seed)
        self.register_buffer("item_entity", edges.item_entity, persistent=False)
        self.entity = nn.Embedding(edges.n_entities, dim)
        nn.init.normal_(self.entity.weight, std=init_std)
        self.propagation = KGPropagation(dim, max(edges.n_relations, 1), layers)
        item_mask = edges.degree()[edges.item_entity] > 0
        user_mask = (graph.user_items @ item_mask.float()[:, None]).squeeze(1) > 0
        register_masks(self, user_mask, item_mask)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self.table = map_tensors(self.table, fn)  # a plain dataclass: moves with the module
        return self

    def forward(self, graph: TrainingGraph) -> SourceVectors:
        # The item's own entity vector is left out: it would be a second item-ID embedding.
        item = self.propagation(self.entity.weight, self.table, self.item_entity,
                                include_self=False)  # (n_items, d)
        return SourceVectors(graph.user_items @ item, item)
