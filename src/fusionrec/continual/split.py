"""The labelled parts of a retrain: new pairs split per user, the replay sample, the union.

New positive pairs are split per user with the top-K protocol's rule (RecBole's counts: a user
with one new pair keeps it for training, one with two gives one to the test part). On CTR
tasks each new positive gets one sampled negative (an item the user has no positive for) in
the same part, and explicit negatives (dislikes, low ratings) are split like positives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fusionrec.data.leakage import pair_keys
from fusionrec.data.split import Pairs, Split


def concat(*parts: Pairs) -> Pairs:
    """Rows of ``parts`` one after another (no per-row history)."""
    return Pairs(np.concatenate([p.user for p in parts]), np.concatenate([p.item for p in parts]),
                 np.concatenate([p.label for p in parts]))


def empty() -> Pairs:
    return Pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))


def restrict(pairs: Pairs, n_users: int, n_items: int) -> Pairs:
    """The rows whose user and item exist in a model of ``n_users`` x ``n_items``."""
    return pairs.take((pairs.user < n_users) & (pairs.item < n_items))


@dataclass(frozen=True)
class NewParts:
    train: Pairs
    valid: Pairs
    test: Pairs
    dropped_overlap: int  # new pairs that were already held-out rows of the parent's split
    sampled_negatives: int = 0  # CTR rows not from any event

    @property
    def from_events(self) -> int:
        return len(self.train) + len(self.valid) + len(self.test) - self.sampled_negatives


def _per_user_parts(users: np.ndarray, ratios, rng: np.random.Generator) -> np.ndarray:
    """Part (0 train, 1 valid, 2 test) of every row, RecBole-style per user."""
    from fusionrec.data.protocols._common import group_by_user
    from fusionrec.data.protocols.topk_random import recbole_counts

    part = np.zeros(len(users), np.int64)
    if not len(users):
        return part
    order = rng.permutation(len(users))
    grouped, position, size = group_by_user(users[order])
    n_train, n_valid, _ = recbole_counts(size, ratios)
    part[order[grouped]] = np.where(position < n_train, 0,
                                    np.where(position < n_train + n_valid, 1, 2))
    return part


def split_new_pairs(grown, parent: Split, valid: float, holdout: float,
                    rng: np.random.Generator) -> NewParts:
    """``grown`` (a ``GrownDataset``) -> new train/valid/test pairs in the grown indices."""
    n_items = grown.dataset.n_items
    taken = np.unique(np.concatenate([pair_keys(p.user, p.item, n_items)
                                      for p in (parent.train, parent.valid, parent.test)]))
    ratios = (1.0 - valid - holdout, valid, holdout)

    def split(user, item, label):
        keep = ~np.isin(pair_keys(user, item, n_items), taken)
        user, item = user[keep], item[keep]
        part = _per_user_parts(user, ratios, rng)
        pieces = [Pairs(user[part == p], item[part == p], np.full(int((part == p).sum()), label,
                                                                    np.float32))
                  for p in range(3)]
        return pieces, int((~keep).sum())

    positives, dropped = split(grown.positive_user, grown.positive_item, 1.0)
    if parent.task != "ctr":
        return NewParts(*positives, dropped)
    negatives, dropped_neg = split(grown.negative_user, grown.negative_item, 0.0)
    sampled = [_sampled_negatives(p, grown.dataset, taken, rng) for p in positives]
    parts = [concat(pos, neg, smp) for pos, neg, smp in zip(positives, negatives, sampled)]
    return NewParts(*parts, dropped + dropped_neg, sum(len(p) for p in sampled))


def _sampled_negatives(positives: Pairs, dataset, taken: np.ndarray,
                       rng: np.random.Generator) -> Pairs:
    """One item per positive row that the user has no interaction with and that is no
    labelled row of the parent's split (the ctr-kgcn protocol's negatives)."""
    from fusionrec.models.common.sampling import NegativeSampler

    inter = dataset.interactions
    n_items = dataset.n_items
    known = np.concatenate([pair_keys(inter.user, inter.item, n_items), taken])
    sampler = NegativeSampler.from_pairs(known // n_items, known % n_items, n_items)
    items = sampler.draw(positives.user, 1, rng)[:, 0]
    return Pairs(positives.user, items, np.zeros(len(items), np.float32))


def replay_sample(parent: Split, fraction: float, rng: np.random.Generator) -> Pairs:
    """``fraction`` of the parent's training rows (its positives on top-K tasks), uniformly."""
    rows = parent.train if parent.task == "ctr" else parent.train.positives()
    n = int(round(fraction * len(rows)))
    return rows.take(np.sort(rng.choice(len(rows), size=n, replace=False)))
