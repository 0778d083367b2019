"""Two-stage recommendation: a retrieval model proposes each user's top-N, the cross-encoder
reorders them.

The retrieval model is any model with ``recommend`` (BPR-MF, the fusion model, ...); the
reranker any model with ``score`` (a fitted ``CrossEncoderRecommender``). Only the N retrieved
candidates are ever scored by the cross-encoder, so its cost is N prompts per user, whatever the
catalogue size, and an item outside the retrieved N never reaches the list.

The final order blends the two stages *by rank*, since a retrieval score and a cross-encoder
logit live on different scales: with ``r_j`` a candidate's retrieval rank and ``c_j`` its
cross-encoder rank among the user's candidates (0 = best),
``score_j = (1 - blend) * (1 - c_j / N) + blend * (1 - r_j / N)``; ties keep the retrieval
order. ``blend = 0`` is the cross-encoder's order, ``blend = 1`` the retrieval order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fusionrec.data.split import Split


@dataclass(frozen=True)
class RerankConfig:
    """``candidates``: N, items retrieved per user; ``blend``: weight of the retrieval rank."""

    candidates: int = 50
    blend: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.candidates, bool) or not isinstance(self.candidates, int) \
                or self.candidates < 1:
            raise ValueError(f"rerank candidates must be an int >= 1, got {self.candidates!r}")
        if not 0.0 <= float(self.blend) <= 1.0:
            raise ValueError(f"rerank blend must be in [0, 1], got {self.blend!r}")


class Reranker:
    """``recommend``/``score`` over ``retriever``'s top-``candidates``, reordered by
    ``cross_encoder.score``. ``fit`` fits both stages on one split; pre-fitted stages can be
    used without it."""

    name: ClassVar[str] = "rerank"
    outputs_probabilities: ClassVar[bool] = False

    def __init__(self, retriever, cross_encoder, config: RerankConfig | None = None,
                 **params) -> None:
        if not hasattr(retriever, "recommend") or not hasattr(cross_encoder, "score"):
            raise TypeError("Reranker needs a retriever with recommend() and a cross-encoder "
                            "with score()")
        self.retriever = retriever
        self.cross_encoder = cross_encoder
        self.config = config or RerankConfig(**params)

    def get_params(self) -> dict:
        return {"candidates": self.config.candidates, "blend": self.config.blend}

    def fit(self, split: Split) -> "Reranker":
        self.retriever.fit(split)
        self.cross_encoder.fit(split)
        return self

    def retrieve(self, users: np.ndarray, exclude_seen: bool = True
                 ) -> tuple[np.ndarray, np.ndarray]:
        """``(items, retrieval scores)``, ``(n_users, N)``, best first; a slot the retriever could
        not fill (too few unseen items) scores ``-inf``."""
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        items, scores = self.retriever.recommend(users, k=self.config.candidates,
                                                 exclude_seen=exclude_seen)
        return np.asarray(items, dtype=np.int64), np.asarray(scores, dtype=np.float64)

    def rerank(self, users: np.ndarray, items: np.ndarray, retrieval_scores: np.ndarray,
               k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Reorder retrieved ``items`` ``(n_users, N)`` of ``users``; returns the top ``k``
        (default all N) as ``(items, blended scores)``, unfilled slots ``(-1, -inf)``."""
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        n_users, n = items.shape
        k = n if k is None else int(k)
        valid = np.isfinite(retrieval_scores) & (items >= 0)                  # (n_users, N)
        logits = np.full(items.shape, -np.inf)
        if valid.any():
            rows_user = np.broadcast_to(users[:, None], items.shape)
            logits[valid] = np.asarray(self.cross_encoder.score(rows_user[valid], items[valid]),
                                       dtype=np.float64)
        position = np.broadcast_to(np.arange(n), items.shape)               # retrieval rank
        # cross-encoder rank among the row's candidates; retrieval order breaks its ties
        by_logit = np.lexsort((position, -logits), axis=1)                  # (n_users, N)
        ce_rank = np.empty_like(by_logit)
        np.put_along_axis(ce_rank, by_logit, np.arange(n)[None, :].repeat(n_users, 0), axis=1)
        blend = float(self.config.blend)
        size = float(self.config.candidates)
        blended = (1 - blend) * (1 - ce_rank / size) + blend * (1 - position / size)
        blended = np.where(valid, blended, -np.inf)
        order = np.lexsort((position, -blended), axis=1)[:, :k]
        out_items = np.take_along_axis(np.where(valid, items, -1), order, axis=1)
        out_scores = np.take_along_axis(blended, order, axis=1)
        if k > n:  # fewer candidates than asked for: pad
            pad = k - n
            out_items = np.pad(out_items, ((0, 0), (0, pad)), constant_values=-1)
            out_scores = np.pad(out_scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        return out_items, out_scores

    def recommend(self, users: np.ndarray, k: int = 10,
                  exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` of the reordered candidates; ``k`` beyond N leaves ``(-1, -inf)`` slots."""
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        items, scores = self.retrieve(users, exclude_seen)
        return self.rerank(users, items, scores, k)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The blended score of each (user, item) among the user's candidates (seen items
        excluded); 0.0, below every candidate, for an item outside them."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        out = np.zeros(len(users), dtype=np.float64)
        distinct, inverse = np.unique(users, return_inverse=True)
        if not len(distinct):
            return out
        ranked, scores = self.recommend(distinct, k=self.config.candidates)
        width = int(max(ranked.max(initial=0), items.max(initial=0))) + 1
        keys = (np.broadcast_to(np.arange(len(distinct))[:, None], ranked.shape) * width
                + ranked)[ranked >= 0]
        values = scores[ranked >= 0]
        order = np.argsort(keys)
        keys, values = keys[order], values[order]
        wanted = inverse * width + items
        at = np.clip(np.searchsorted(keys, wanted), 0, max(len(keys) - 1, 0))
        hit = (keys[at] == wanted) if len(keys) else np.zeros(len(wanted), bool)
        out[hit] = values[at[hit]]
        return out
