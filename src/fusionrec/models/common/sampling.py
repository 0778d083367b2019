"""Training rows and negative sampling shared by the LightGCN and KGCN baselines.

Both train on one of two kinds of batch: ``(users (B,), items (B, 1 + n), None)`` for a
pairwise (BPR) loss, where column 0 is a training positive and the rest are sampled items the
user has no training positive for; or ``(users (B,), items (B, 1), labels (B,))`` for BCE on
labelled rows (a CTR split's own rows, or positives plus sampled negatives on a top-K split).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from fusionrec.data.split import Split
from fusionrec.models.common.ranking import SeenItems


class NegativeSampler:
    """Uniform items a user has no training positive for: rejection sampling against sorted
    ``user * n_items + item`` keys (one sampler for every model family and for retraining).

    ``candidates`` (sorted item indices, None: every item) limits the draws to those items,
    e.g. the items with a training interaction, so that items held out of training (cold
    items, scored later from their content) are never trained as negatives."""

    def __init__(self, keys: np.ndarray, n_items: int,
                 candidates: np.ndarray | None = None) -> None:
        self.n_items = n_items
        self._keys = np.asarray(keys, np.int64)  # ascending
        self.candidates = None if candidates is None else np.asarray(candidates, np.int64)
        if self.candidates is not None and not len(self.candidates):
            raise ValueError("NegativeSampler: candidates is empty; there is no item to draw")

    @classmethod
    def from_pairs(cls, users: np.ndarray, items: np.ndarray, n_items: int,
                   candidates: np.ndarray | None = None) -> "NegativeSampler":
        """Excluding every ``(users[i], items[i])`` pair."""
        return cls(np.unique(np.asarray(users, np.int64) * n_items
                             + np.asarray(items, np.int64)), n_items, candidates)

    def uniform(self, rng: np.random.Generator, size) -> np.ndarray:
        """Items drawn uniformly from the candidates (no check against seen pairs)."""
        if self.candidates is None:
            return rng.integers(0, self.n_items, size=size)
        return self.candidates[rng.integers(0, len(self.candidates), size=size)]

    @classmethod
    def from_seen(cls, seen: SeenItems, n_items: int) -> "NegativeSampler":
        """Excluding each user's seen items (``seen.indices`` are sorted within a user)."""
        users = np.repeat(np.arange(seen.n_users), np.diff(seen.indptr))
        return cls(users * n_items + seen.indices, n_items)

    def draw(self, users: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(len(users), n)`` items; a user who has seen nearly every item may keep a clash."""
        keys, n_items = self._keys, self.n_items
        draw = self.uniform(rng, (len(users), n))
        if not len(keys):
            return draw
        for _ in range(20):
            flat = users[:, None] * n_items + draw
            pos = np.searchsorted(keys, flat).clip(0, len(keys) - 1)
            clash = keys[pos] == flat
            if not clash.any():
                break
            draw[clash] = self.uniform(rng, int(clash.sum()))
        return draw


def resolve_loss(loss: str, task: str, default_topk: str = "bpr") -> str:
    """``auto`` is BCE on CTR splits and ``default_topk`` on top-K splits."""
    if loss == "auto":
        return "bce" if task == "ctr" else default_topk
    return loss


def training_batches(split: Split, loss: str, sampler: NegativeSampler, n_negatives: int,
                     batch_size: int, rng: np.random.Generator) -> Iterator[tuple]:
    """One shuffled epoch of torch batches for ``loss`` (``"bpr"`` or ``"bce"``)."""
    import torch

    train = split.train
    if loss == "bpr":
        pos = train.positives()
        users, items, labels = pos.user, pos.item, None
    elif (train.label < 0.5).any():  # a CTR protocol's labelled negatives
        users, items, labels = train.user, train.item, train.label
    else:  # positives only: add fresh negatives each epoch
        pos = train.positives()
        neg = sampler.draw(pos.user, n_negatives, rng).ravel()
        users = np.concatenate([pos.user, np.repeat(pos.user, n_negatives)])
        items = np.concatenate([pos.item, neg])
        labels = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))]).astype(np.float32)
    order = rng.permutation(len(users))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        u = users[rows]
        if labels is None:
            candidates = np.concatenate([items[rows, None], sampler.draw(u, n_negatives, rng)],
                                        axis=1)  # (B, 1 + n_negatives)
            yield torch.from_numpy(u), torch.from_numpy(candidates), None
        else:
            yield (torch.from_numpy(u), torch.from_numpy(items[rows, None]),
                   torch.from_numpy(labels[rows]))


def pair_loss(scores, labels):
    """BPR (``labels is None``: column 0 vs the rest) or BCE on column 0's logits."""
    import torch.nn.functional as F

    if labels is None:
        return -F.logsigmoid(scores[:, :1] - scores[:, 1:]).mean()
    return F.binary_cross_entropy_with_logits(scores[:, 0], labels)
