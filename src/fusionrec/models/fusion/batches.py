"""Training batches for the fusion model: labelled pairs plus sampled retrieval negatives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from fusionrec.data.split import Split
from fusionrec.models.common.sampling import NegativeSampler


@dataclass(frozen=True)
class Batch:
    users: torch.Tensor  # (B,) long
    items: torch.Tensor  # (B,) long
    labels: torch.Tensor  # (B,) float, 1 for positives
    # (B, n) long: per-row items the user has no training positive for; or (M,) long: one
    # uniform pool shared by every row (sampled softmax over many negatives at little cost)
    negatives: torch.Tensor


def training_batches(split: Split, sampler: NegativeSampler, batch_size: int, n_negatives: int,
                     rng: np.random.Generator, shared: bool = False,
                     every_item: bool = False) -> Iterator[Batch]:
    """One shuffled epoch. CTR splits yield their labelled training pairs; top-K splits yield
    their positives. Every row carries ``n_negatives`` sampled items for the retrieval loss
    (and, on top-K splits, the CTR head's negatives); with ``shared`` the batch carries one
    pool of ``n_negatives`` uniform items instead (a rare accidental positive is tolerated);
    with ``every_item`` that pool is every item, in index order (a full softmax; the scorer's
    ``negative_pool`` then masks the items outside ``sampler.candidates``). Sampled negatives
    come from ``sampler.candidates`` only."""
    train = split.train if split.task == "ctr" else split.train.positives()
    users, items, labels = train.user, train.item, train.label
    order = rng.permutation(len(users))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        if every_item:
            negatives = np.arange(sampler.n_items)
        elif shared:
            negatives = sampler.uniform(rng, n_negatives)
        else:
            negatives = sampler.draw(users[rows], n_negatives, rng)
        yield Batch(torch.from_numpy(users[rows].copy()), torch.from_numpy(items[rows].copy()),
                    torch.from_numpy(labels[rows].copy()), torch.from_numpy(negatives))
