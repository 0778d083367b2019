"""The servable contract (:mod:`fusionrec.models.servable`) for plain embedding models whose
score is ``u . i (+ b_i)``: BPR-MF and LightGCN.

- Vectors: the final user and item vectors (LightGCN: after propagation) as one
  ``interactions`` slot, scored by :class:`~fusionrec.models.servable.DotScorer`.
- Fold-in: the service's linear fold-in, a least-squares (ridge) map fitted over the training
  users from the mean of a user's items' vectors to the user's vector. It was chosen over
  plain averaging because BPR-MF's and LightGCN's user vectors are not on the items' scale (nor
  centred like them), and the map learns that scaling from the training users; for a new user
  it starts from the average user.
- New items: pure ID models have no vector for an item without training interactions (it
  would be untrained noise), so ``content_items`` is false and the service refuses to place
  them (409) until a retrain.
- Forgetting: the user's row is zeroed (their scores fall back to the item biases) and their
  seen items dropped; the item vectors (and, for LightGCN, neighbours shaped by propagation
  over the user's edges) still carry their influence: ``needs_retrain`` says so.
- Warm start: the Trainer checkpoint's rows are copied by raw user/item id.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

from fusionrec.models.common.ranking import SeenItems
from fusionrec.models.servable import (DotScorer, ForgetOutcome, ServableError,
                                       ServingCapabilities, VectorTables, single_source_tables, warm_state)

FOLD_IN = ("a least-squares map, fitted over the training users, from the mean of the user's "
           "items' vectors to the user's vector")


class EmbeddingServable(ABC):
    """Mixin; a model provides the three abstract methods, ``ROW_KEYS`` (its module's row
    tables and how to name their rows) and ``INFLUENCE`` (what still carries a forgotten
    user's influence)."""

    ROW_KEYS: ClassVar[Mapping[str, Callable[[Any], tuple[str, ...]]]] = {}
    INFLUENCE: ClassVar[tuple[str, ...]] = ()

    @property
    def serving(self) -> ServingCapabilities:
        return ServingCapabilities(content_items=False, fold_in=FOLD_IN, heads=("dot",))

    @abstractmethod
    def _final_vectors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(users (n_u, d), items (n_i, d), item bias (n_i,) incl. any global offset)``."""

    @abstractmethod
    def _zero_user(self, user: int) -> None:
        """Zero ``user``'s learned vector in place."""

    @abstractmethod
    def _check_parent_weights(self, weights: Mapping[str, Any]) -> None:
        """Raise :class:`ServableError` unless ``weights`` (a Trainer checkpoint's module
        state) belong to this fitted model."""

    def vector_tables(self) -> VectorTables:
        users, items, _ = self._final_vectors()
        return single_source_tables(users, items, self.seen_)

    def vector_scorer(self) -> DotScorer:
        return DotScorer(self._final_vectors()[2])

    def text_encoder(self):
        return None  # reads no text

    def forget_user(self, user: int, split_after, changed_items: np.ndarray,
                    had_friends: bool) -> ForgetOutcome:
        self._zero_user(user)
        self.seen_ = SeenItems.from_pairs(split_after.train, self.seen_.n_users)
        return ForgetOutcome(("the user's vector (zeroed)", "seen items"), self.INFLUENCE)

    def check_parent(self, weights: Mapping[str, Any]) -> None:
        self._check_parent_weights(weights)

    def warm_start(self, module, weights: Mapping[str, Any], parent_features, features,
                   seen: SeenItems) -> dict[str, int]:
        counts = warm_state(module, weights, self.ROW_KEYS, parent_features, features)
        self.seen_ = seen
        return counts


def require_same(state: Mapping[str, Any], weights: Mapping[str, Any]) -> None:
    """Raise :class:`ServableError` unless every tensor of ``state`` equals its namesake in
    ``weights`` (a checkpoint that does not belong to the model is refused)."""
    import torch

    for name, value in state.items():
        saved = weights.get(name)
        if saved is None or saved.shape != value.shape or not torch.equal(
                saved.to(value.dtype), value.detach().cpu()):
            raise ServableError(f"the checkpoint's {name} differs from the run's model; the "
                                "checkpoint does not belong to this model")
