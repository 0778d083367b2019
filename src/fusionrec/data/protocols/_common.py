"""Pieces every protocol shares: errors, pair de-duplication, per-user grouping, and the
derivation of the leak-free ``features`` dataset."""

from __future__ import annotations

import numpy as np

from fusionrec.data.leakage import filter_side_sources, heldout_keys, pair_keys
from fusionrec.data.schema import Dataset, Interactions
from fusionrec.data.split import Pairs
from fusionrec.errors import FusionRecError


class ProtocolError(FusionRecError, ValueError):
    """A protocol cannot run on this dataset or with these parameters (user-fixable)."""


def check_ratios(name: str, ratios) -> tuple[float, float, float]:
    ratios = tuple(float(r) for r in ratios)
    if len(ratios) != 3 or any(r < 0 for r in ratios) or ratios[0] <= 0:
        raise ProtocolError(f"{name}: ratios must be three non-negative numbers "
                            f"(train, valid, test) with train > 0, got {ratios}")
    return ratios


def distinct_pair_rows(inter: Interactions, n_items: int, order: np.ndarray | None = None
                       ) -> np.ndarray:
    """Row indices of the first occurrence of every distinct (user, item) pair, taking rows in
    ``order`` (default: file order) and returning them in that order. Duplicate events of one
    pair would otherwise let the same pair sit in train and test at once."""
    order = np.arange(len(inter)) if order is None else np.asarray(order)
    keys = pair_keys(inter.user[order], inter.item[order], n_items)
    _, first = np.unique(keys, return_index=True)
    return order[np.sort(first)]


def group_by_user(users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stable grouping of rows by user in order of first appearance.

    Returns ``(order, position, size)``: ``order`` permutes rows so each user's rows are
    contiguous (keeping their relative order), ``position[j]`` is the rank of row ``order[j]``
    inside its user's group and ``size[j]`` that group's size.
    """
    users = np.asarray(users, dtype=np.int64)
    uniq, first, inverse, counts = np.unique(users, return_index=True, return_inverse=True,
                                             return_counts=True)
    appearance = np.argsort(np.argsort(first))  # user -> rank of its first row
    order = np.lexsort((np.arange(users.size), appearance[inverse]))
    group = inverse[order]
    starts = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
    position = np.arange(users.size) - np.repeat(starts, np.diff(np.r_[starts, users.size]))
    return order, position, counts[group]


def positives(user, item) -> Pairs:
    return Pairs(user, item, np.ones(len(user), dtype=np.float32))


def training_features(dataset: Dataset, train: Pairs, heldout: np.ndarray,
                      drop_rating: bool = False) -> Dataset:
    """The dataset a model may read: interactions cut to the rows whose pair is a training
    positive, and every side-source row on a held-out pair removed."""
    inter = dataset.interactions
    pos = train.positives()
    keep = np.isin(pair_keys(inter.user, inter.item, dataset.n_items),
                   pair_keys(pos.user, pos.item, dataset.n_items))
    kept = inter.take(keep)
    if drop_rating and kept.rating is not None:
        kept = Interactions(kept.user, kept.item, None, kept.weight, kept.timestamp)
    return filter_side_sources(dataset.replace(interactions=kept), heldout)


def standard_features(dataset: Dataset, train: Pairs, valid: Pairs, test: Pairs) -> Dataset:
    """Features for protocols whose held-out pairs are exactly the valid and test rows."""
    return training_features(dataset, train, heldout_keys(dataset.n_items, valid, test))
