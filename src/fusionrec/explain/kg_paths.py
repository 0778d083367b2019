"""KG paths from the items a user liked to a recommended item.

Paths have at most three edges (``liked -> e -> recommended``, ``liked -> e1 -> e2 ->
recommended``), found by expanding two hops around the recommended item's entity and meeting
the liked items' entities and their neighbours. Neighbours are visited most specific first
(lowest degree), and a path scores ``mean(1 / log(2 + degree))`` over its inner entities
divided by its length: sharing a rare artist beats sharing the genre "rock".
"""

from __future__ import annotations

import numpy as np

from fusionrec.explain.types import KGHop, KGPath
from fusionrec.text.scrub import scrub_pii


class KGPathFinder:
    def __init__(self, kg, fanout: int = 64, max_paths: int = 3) -> None:
        n_entities = len(kg.entities)
        head = np.concatenate([kg.head, kg.tail])
        tail = np.concatenate([kg.tail, kg.head])
        rel = np.concatenate([kg.relation, kg.relation])
        keep = head != tail
        head, tail, rel = head[keep], tail[keep], rel[keep]
        self.degree = np.bincount(head, minlength=n_entities)
        # Per node, neighbours sorted by their degree: the specific ones are seen first.
        order = np.lexsort((self.degree[tail], head))
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(head, minlength=n_entities))])
        self.neighbour, self.relation = tail[order], rel[order]
        self.item_entity = dict(zip(kg.link_item.tolist(), kg.link_entity.tolist()))
        # Names come from item text (a free-text source): scrubbed before any explanation.
        self.names = [scrub_pii(name or raw) for name, raw in
                      zip(kg.entity_names or kg.entities.ids, kg.entities.ids)]
        self.relations = kg.relations.ids
        self.fanout, self.max_paths = fanout, max_paths

    def _around(self, node: int):
        lo, hi = self.indptr[node], min(self.indptr[node + 1], self.indptr[node] + self.fanout)
        return zip(self.neighbour[lo:hi].tolist(), self.relation[lo:hi].tolist())

    def paths(self, history: np.ndarray, item: int) -> tuple[KGPath, ...]:
        target = self.item_entity.get(int(item))
        liked = {}
        for h in np.asarray(history).tolist():
            entity = self.item_entity.get(h)
            if entity is not None and h != item:
                liked.setdefault(entity, h)
        if target is None or not liked:
            return ()
        parent: dict[int, tuple[int, int]] = {target: (-1, -1)}  # node -> (towards target, rel)
        ring = [target]
        for _ in range(2):
            grown = []
            for node in ring:
                for nbr, rel in self._around(node):
                    if nbr not in parent:
                        parent[nbr] = (node, rel)
                        grown.append(nbr)
            ring = grown
        found: list[KGPath] = []
        for entity, source_item in liked.items():
            if entity in parent and entity != target:
                found.append(self._path(entity, source_item, parent))
                continue
            for nbr, rel in self._around(entity):  # third edge from the liked side
                if nbr in parent and nbr != target:
                    found.append(self._path(entity, source_item, parent, via=(rel, nbr)))
                    break
        found.sort(key=lambda p: -p.score)
        return tuple(found[:self.max_paths])

    def _path(self, start: int, source_item: int, parent, via=None) -> KGPath:
        """The path ``start -> [via] -> ... -> target`` following ``parent`` links."""
        nodes, rels, node = [start], [], start
        if via is not None:
            rels.append(via[0])
            nodes.append(via[1])
            node = via[1]
        while parent[node][0] >= 0:
            node, rel = parent[node]
            rels.append(rel)
            nodes.append(node)
        hops = tuple(KGHop(self.relations[r], self.names[n]) for r, n in zip(rels, nodes[1:]))
        inner = nodes[1:-1]
        specificity = [1.0 / np.log(2.0 + self.degree[e]) for e in inner] or [1.0]
        return KGPath(int(source_item), hops, float(np.mean(specificity) / len(hops)))
