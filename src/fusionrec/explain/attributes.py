"""Attributes and tags the recommended item shares with the items the user liked."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from fusionrec.explain.types import SharedAttribute
from fusionrec.text.scrub import scrub_pii


class AttributeOverlap:
    """Over the item feature bags (``column=value``, ``tag:name``) of a dataset."""

    def __init__(self, bag: sp.csr_matrix, features: tuple[str, ...], top: int = 3,
                 examples: int = 3) -> None:
        self.bag = sp.csr_matrix(bag, dtype=bool)
        self.features = features
        self.top, self.examples = top, examples

    @classmethod
    def from_dataset(cls, dataset) -> "AttributeOverlap | None":
        from fusionrec.models.fusion.attribute_features import feature_bags

        attrs = dataset.item_attributes
        if attrs is None:
            return None
        tags = attrs.tags if attrs.tags is not None and len(attrs.tags) else None
        if tags is None and (attrs.attributes is None or not attrs.attributes.columns):
            return None
        bags = feature_bags(attrs.attributes, tags, dataset.n_items)
        # Tags are user-written: scrubbed before they can appear in an explanation.
        return cls(bags.bag, tuple(scrub_pii(f) for f in bags.features))

    def shared(self, history: np.ndarray, item: int) -> tuple[SharedAttribute, ...]:
        return self.shared_many(history, np.array([item]))[0]

    def shared_many(self, history: np.ndarray, items: np.ndarray
                    ) -> list[tuple[SharedAttribute, ...]]:
        """:meth:`shared` for several items of one user (the liked items' feature counts are
        computed once)."""
        n = self.bag.shape[0]
        history = np.asarray(history)
        history = history[history < n]
        liked = sp.csc_matrix(self.bag[history]) if len(history) else None  # (n_liked, F)
        counts = (np.asarray(liked.sum(axis=0)).ravel() if liked is not None
                  else np.zeros(self.bag.shape[1]))
        out = []
        for item in np.asarray(items).tolist():
            if item >= n or liked is None:
                out.append(())
                continue
            features = self.bag.indices[self.bag.indptr[item]:self.bag.indptr[item + 1]]
            own = np.isin(history, item)  # the item itself (exclude_seen=false) is no evidence
            found = []
            for j in features[np.argsort(-counts[features], kind="stable")]:
                rows = liked.indices[liked.indptr[j]:liked.indptr[j + 1]]
                rows = rows[~own[rows]]
                if len(rows):
                    found.append(SharedAttribute(self.features[j], int(len(rows)),
                                                 tuple(int(history[r])
                                                       for r in np.sort(rows)[:self.examples])))
                if len(found) == self.top or not counts[j]:
                    break
            out.append(tuple(sorted(found, key=lambda a: -a.n_liked)))
        return out
