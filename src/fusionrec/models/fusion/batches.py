"""Training batches for the fusion model: labelled pairs plus sampled retrieval negatives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from fusionrec.data.split import Split


@dataclass(frozen=True)
class Batch:
    users: torch.Tensor  # (B,) long
    items: torch.Tensor  # (B,) long
    labels: torch.Tensor  # (B,) float, 1 for positives
    # (B, n) long: per-row items the user has no training positive for; or (M,) long: one
    # uniform pool shared by every row (sampled softmax over many negatives at little cost)
    negatives: torch.Tensor


class NegativeSampler:
    """Uniform items a user has no training positive for (rejection sampling against sorted
    ``user * n_items + item`` keys; a user who has nearly every item may keep a clash)."""

    def __init__(self, users: np.ndarray, items: np.ndarray, n_items: int) -> None:
        self.n_items = n_items
        self.keys = np.unique(np.asarray(users, np.int64) * n_items + np.asarray(items, np.int64))

    def sample(self, users: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(len(users), n)`` item indices."""
        draw = rng.integers(0, self.n_items, size=(len(users), n))
        if not len(self.keys):
            return draw
        for _ in range(20):
            flat = users[:, None] * self.n_items + draw
            pos = np.searchsorted(self.keys, flat).clip(0, len(self.keys) - 1)
            clash = self.keys[pos] == flat
            if not clash.any():
                break
            draw[clash] = rng.integers(0, self.n_items, size=int(clash.sum()))
        return draw


def training_batches(split: Split, sampler: NegativeSampler, batch_size: int, n_negatives: int,
                     rng: np.random.Generator, shared: bool = False,
                     every_item: bool = False) -> Iterator[Batch]:
    """One shuffled epoch. CTR splits yield their labelled training pairs; top-K splits yield
    their positives. Every row carries ``n_negatives`` sampled items for the retrieval loss
    (and, on top-K splits, the CTR head's negatives); with ``shared`` the batch carries one
    pool of ``n_negatives`` uniform items instead (a rare accidental positive is tolerated);
    with ``every_item`` that pool is every item, in index order (a full softmax)."""
    train = split.train if split.task == "ctr" else split.train.positives()
    users, items, labels = train.user, train.item, train.label
    order = rng.permutation(len(users))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        if every_item:
            negatives = np.arange(sampler.n_items)
        elif shared:
            negatives = rng.integers(0, sampler.n_items, size=n_negatives)
        else:
            negatives = sampler.sample(users[rows], n_negatives, rng)
        yield Batch(torch.from_numpy(users[rows].copy()), torch.from_numpy(items[rows].copy()),
                    torch.from_numpy(labels[rows].copy()), torch.from_numpy(negatives))
