"""The verbs every FusionRec model implements, and the shared top-K logic built on ``score``."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from fusionrec.data.split import Split


@runtime_checkable
class Recommender(Protocol):
    """``fit(split) -> self``; ``score(users, items) -> scores``; ``recommend(users, k)``.

    ``users``/``items`` are dense indices. ``score`` returns one real score per (user, item)
    row (higher = more likely); for CTR models it is a logit or probability.
    ``recommend`` returns ``(items, scores)`` arrays of shape ``(len(users), k)``, best first.

    Optional ``cold_start``: the kinds (``"items"``, ``"users"``) the model can score with no
    training interaction, from side data; evaluation refuses the others on cold-start splits
    (``fusionrec.evaluation.cold``).
    """

    name: str

    def fit(self, split: Split) -> "Recommender": ...

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray: ...

    def recommend(self, users: np.ndarray, k: int = 10,
                  exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]: ...


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-``k`` of a ``(n_users, n_items)`` score matrix, best first.

    Entries equal to ``-inf`` (excluded items) sort last; ``k`` is clipped to the item count.
    """
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # (n_users, k), unordered
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)
