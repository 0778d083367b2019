"""Shared top-K machinery for models: the training items to exclude, and batched full ranking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from fusionrec.data.split import Pairs
from fusionrec.models.base import RecommenderBase, top_k


@dataclass(frozen=True)
class SeenItems:
    """Per-user training positives in CSR form (``indices[indptr[u]:indptr[u+1]]``).

    Models keep this (and nothing else of the training data) so that ``recommend`` can skip
    items a user already has.
    """

    indptr: np.ndarray   # (n_users + 1,) int64
    indices: np.ndarray  # (nnz,) int64, sorted within each user

    @classmethod
    def from_pairs(cls, pairs: Pairs, n_users: int) -> "SeenItems":
        positive = pairs.label > 0.5
        users, items = pairs.user[positive], pairs.item[positive]
        order = np.lexsort((items, users))
        counts = np.bincount(users, minlength=n_users)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(indptr, items[order].astype(np.int64))

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    def items_of(self, user: int) -> np.ndarray:
        return self.indices[self.indptr[user]:self.indptr[user + 1]]

    def positions(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, items)``: row ``r`` of a ``users`` batch has seen item ``items[j]`` for
        every ``j`` with ``rows[j] == r``."""
        starts, ends = self.indptr[users], self.indptr[users + 1]
        counts = ends - starts
        rows = np.repeat(np.arange(len(users)), counts)
        # position of each seen entry: its user's start plus its offset within the user
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return rows, self.indices[np.repeat(starts, counts) + offsets]

    def mask(self, scores: np.ndarray, users: np.ndarray) -> np.ndarray:
        """Set ``scores[r, i] = -inf`` for every item ``i`` seen by ``users[r]`` (in place)."""
        rows, items = self.positions(users)
        scores[rows, items] = -np.inf
        return scores


def recommend_by_scores(score_rows: Callable[[np.ndarray], np.ndarray], users, k: int,
                        seen: SeenItems | None, exclude_seen: bool = True,
                        batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` items for ``users`` from ``score_rows(user_batch) -> (batch, n_items)`` scores,
    computed ``batch_size`` users at a time to bound memory. Scores that come back as a tensor
    on a GPU are masked and ranked there (only ``(batch, k)`` crosses back); CPU scores take
    the numpy path, whose tie order every committed CPU result was computed with."""
    users = np.atleast_1d(np.asarray(users, dtype=np.int64))
    item_parts, score_parts = [], []
    for start in range(0, len(users), batch_size):
        batch = users[start:start + batch_size]
        scores = score_rows(batch)
        if _on_accelerator(scores):
            items, best = _top_k_on_device(scores, batch, k, seen if exclude_seen else None)
            item_parts.append(items)
            score_parts.append(best)
            continue
        if hasattr(scores, "numpy"):  # a CPU tensor
            scores = scores.numpy()
        scores = np.array(scores, dtype=np.float32)  # (batch, n_items), writable copy
        if exclude_seen and seen is not None:
            seen.mask(scores, batch)
        items, best = top_k(scores, k)
        item_parts.append(items)
        score_parts.append(best)
    if not item_parts:
        return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
    return np.concatenate(item_parts).astype(np.int64), np.concatenate(score_parts)


def _on_accelerator(scores) -> bool:
    device = getattr(scores, "device", None)
    return device is not None and getattr(device, "type", "cpu") != "cpu"


def _top_k_on_device(scores, users: np.ndarray, k: int, seen: SeenItems | None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``top_k`` of a ``(batch, n_items)`` tensor where it lies, seen items masked first."""
    import torch

    scores = scores.float().clone()
    if seen is not None:
        rows, items = seen.positions(users)
        scores[torch.from_numpy(rows).to(scores.device),
               torch.from_numpy(items).to(scores.device)] = -float("inf")
    best, items = torch.topk(scores, min(k, scores.shape[1]), dim=1)  # sorted, best first
    return items.cpu().numpy().astype(np.int64), best.cpu().numpy()


def recommend_by_pair_scores(score: Callable[[np.ndarray, np.ndarray], np.ndarray], users,
                             k: int, n_items: int, seen: SeenItems | None,
                             exclude_seen: bool = True, batch_size: int = 64
                             ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`recommend_by_scores` for models that only score (user, item) pairs: every item
    is scored for each user of a batch through ``score(users, items)``."""

    def rows(batch: np.ndarray) -> np.ndarray:
        scores = score(np.repeat(batch, n_items), np.tile(np.arange(n_items), len(batch)))
        return np.asarray(scores).reshape(len(batch), n_items)

    return recommend_by_scores(rows, users, k, seen, exclude_seen, batch_size=batch_size)


class ScoreAllRanking(RecommenderBase):
    """``recommend`` for models that score whole rows: ``score_all(users) -> (n, n_items)``,
    with ``_check_fitted`` and ``seen_`` (the training items to skip)."""

    def recommend(self, users: np.ndarray, k: int = 10,
                  exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        return recommend_by_scores(self.score_all, users, k, self.seen_, exclude_seen)


class PairScoring(RecommenderBase):
    """``score`` and ``recommend`` for models whose primitive is ``score_pairs(Pairs)`` (a row
    carries its own history): ``score`` builds unlabelled rows, ``recommend`` scores every item
    for each user. The model provides ``score_pairs``, ``_check_fitted``, ``seen_`` and
    ``_n_items()``; ``recommend_batch_size`` is users per scoring batch."""

    recommend_batch_size: ClassVar[int] = 64

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        return self.score_pairs(Pairs(users, np.asarray(items, dtype=np.int64),
                                      np.zeros(len(users), dtype=np.float32)))

    def recommend(self, users: np.ndarray, k: int = 10,
                  exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        return recommend_by_pair_scores(self.score, users, k, self._n_items(), self.seen_,
                                        exclude_seen, batch_size=self.recommend_batch_size)
