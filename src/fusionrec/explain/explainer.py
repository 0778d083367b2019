"""``Explainer``: every provider, built once from a dataset's training features."""

from __future__ import annotations

from typing import Callable

import numpy as np

from fusionrec.explain.attributes import AttributeOverlap
from fusionrec.explain.friends import friends_who_interacted_many
from fusionrec.explain.kg_paths import KGPathFinder
from fusionrec.explain.sources import FusionScoring, source_contributions_many
from fusionrec.explain.types import Explanation


class Explainer:
    def __init__(self, space: FusionScoring | None, kg: KGPathFinder | None,
                 attributes: AttributeOverlap | None) -> None:
        self.space, self.kg, self.attributes = space, kg, attributes

    @classmethod
    def from_dataset(cls, features, space: FusionScoring | None = None) -> "Explainer":
        """``features``: the split's training-side dataset (never held-out pairs)."""
        kg = None
        if features.kg is not None and len(features.kg) and len(features.kg.link_item):
            kg = KGPathFinder(features.kg)
        return cls(space, kg, AttributeOverlap.from_dataset(features))

    def explain(self, item: int, history: np.ndarray, friends: np.ndarray,
                history_of: Callable[[int], np.ndarray],
                user: tuple[np.ndarray, np.ndarray] | None = None,
                item_vectors: tuple[np.ndarray, np.ndarray, float] | None = None
                ) -> Explanation:
        """Evidence for recommending ``item`` to a user with positive ``history`` (sorted item
        indices) and ``friends``; ``user``/``item_vectors`` (per-source vectors and masks, and
        the item's bias) enable the source contributions."""
        many = None
        if item_vectors is not None:
            x, mask, bias = item_vectors
            many = (x[None], mask[None], np.array([bias], np.float32))
        return self.explain_many(np.array([item]), history, friends, history_of, user, many)[0]

    def explain_many(self, items: np.ndarray, history: np.ndarray, friends: np.ndarray,
                     history_of: Callable[[int], np.ndarray],
                     user: tuple[np.ndarray, np.ndarray] | None = None,
                     items_vectors: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                     ) -> list[Explanation]:
        """:meth:`explain` for the items of one recommendation list, sharing the per-user work
        (``items_vectors``: ``x (N, S, d)``, ``mask (N, S)``, ``bias (N,)``)."""
        items = np.asarray(items, dtype=np.int64)
        sources = [(float("nan"), ())] * len(items)
        if self.space is not None and user is not None and items_vectors is not None:
            sources = source_contributions_many(self.space, user, *items_vectors)
        attributes = (self.attributes.shared_many(history, items)
                      if self.attributes is not None else [()] * len(items))
        friend_evidence = friends_who_interacted_many(friends, items, history_of)
        return [Explanation(item=int(item), score=sources[n][0],
                            kg_paths=self.kg.paths(history, item) if self.kg is not None else (),
                            friends=friend_evidence[n], shared_attributes=attributes[n],
                            sources=sources[n][1])
                for n, item in enumerate(items.tolist())]
