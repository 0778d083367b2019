"""Knowledge-graph textualiser: an item's 1-hop facts as ``"relation: value"`` parts.

Most public KGs name few entities (Satori and Freebase ids). A fact whose value is named reads
``"film genre: Drama"``; an unnamed value that other items share reads ``"artist origin:
shared with Madonna, Cher"`` (the shared entity is described by the items around it); what is
left becomes a relation summary, ``"actor film (12)"``.
"""

from __future__ import annotations

import math
from collections import defaultdict

from fusionrec.data.schema import KnowledgeGraph
from fusionrec.text.budget import Section
from fusionrec.text.common import Groups, clean, humanise

#: Entities shared by more items than this say little about any one of them (a genre with
#: 700 films); they count towards the summary instead of listing co-items.
MAX_SHARED_DEGREE = 50


class KGText:
    def __init__(self, kg: KnowledgeGraph | None, item_names: tuple[str, ...],
                 max_facts: int = 8, max_shared: int = 3) -> None:
        self.kg = kg
        self.item_names = item_names
        self.max_facts = max_facts
        self.max_shared = max_shared
        if kg is None:
            return
        n_entities = len(kg.entities)
        self.relation_labels = tuple(humanise(r) for r in kg.relations.ids)
        self.entity_items = Groups.build(kg.link_entity, n_entities)
        self.item_entities = Groups.build(kg.link_item, len(item_names))
        self.out_facts = Groups.build(kg.head, n_entities)
        self.in_facts = Groups.build(kg.tail, n_entities)
        names = kg.entity_names or ("",) * n_entities
        self.entity_names = tuple(clean(n) for n in names)
        # (direction, relation, value entity) -> entities on the item side of such facts.
        self.members: dict[tuple[int, int, int], list[int]] = defaultdict(list)
        for h, r, t in zip(kg.head.tolist(), kg.relation.tolist(), kg.tail.tolist()):
            self.members[(0, r, t)].append(h)
            self.members[(1, r, h)].append(t)

    def _entity_label(self, entity: int) -> str:
        if self.entity_names[entity]:
            return self.entity_names[entity]
        items = self.entity_items.rows(entity)
        return self.item_names[self.kg.link_item[items[0]]] if items.size else ""

    def _facts(self, item: int) -> dict[tuple[int, int], list[int]]:
        """(direction, relation) -> value entities, over every entity linked to ``item``."""
        facts: dict[tuple[int, int], list[int]] = defaultdict(list)
        kg = self.kg
        for link in self.item_entities.rows(item):
            entity = int(kg.link_entity[link])
            for row in self.out_facts.rows(entity):
                facts[(0, int(kg.relation[row]))].append(int(kg.tail[row]))
            for row in self.in_facts.rows(entity):
                facts[(1, int(kg.relation[row]))].append(int(kg.head[row]))
        return facts

    def _shared_items(self, item: int, direction: int, relation: int,
                      values: list[int]) -> list[int]:
        """Other items sharing an unnamed value, rarest shared values weighing most."""
        scores: dict[int, float] = defaultdict(float)
        for value in values:
            members = self.members.get((direction, relation, value), ())
            if len(members) < 2 or len(members) > MAX_SHARED_DEGREE:
                continue
            weight = 1.0 / math.log2(1 + len(members))
            for entity in members:
                for link in self.entity_items.rows(entity):
                    other = int(self.kg.link_item[link])
                    if other != item and self.item_names[other]:
                        scores[other] += weight
        ranked = sorted(scores, key=lambda other: (-scores[other], other))
        return ranked[: self.max_shared]

    def _part(self, item: int, direction: int, relation: int, values: list[int]) -> tuple:
        label = self.relation_labels[relation] + (" of" if direction else "")
        values = list(dict.fromkeys(values))
        named = [self._entity_label(v) for v in values]
        named = list(dict.fromkeys(n for n in named if n))
        unnamed = [v for v in values if not self._entity_label(v)]
        shared = [self.item_names[o] for o in
                  self._shared_items(item, direction, relation, unnamed)]
        pieces = []
        if named:
            pieces.append(", ".join(named[:4]))
        if shared:
            pieces.append("shared with " + ", ".join(shared))
        count = f" ({len(values)})" if len(values) > 1 else ""
        text = f"{label}{count}: {'; '.join(pieces)}" if pieces else f"{label}{count}"
        # Informative first: named values, then shared ones, then bare counts.
        rank = (0 if named else 1 if shared else 2, -len(values), label)
        return rank, text

    def section(self, item: int, priority: int) -> Section | None:
        if self.kg is None:
            return None
        facts = self._facts(item)
        parts = sorted(self._part(item, d, r, v) for (d, r), v in facts.items())
        return Section("Facts", tuple(text for _, text in parts[: self.max_facts]), priority,
                       joiner="; ")

