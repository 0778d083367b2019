"""``topk-random``: per-user random 8:1:1 split for full-ranking top-K evaluation (RecBole's
``RO`` order with ``split: {RS: [0.8, 0.1, 0.1]}``, ``group_by: user``).

Distinct (user, item) pairs are shuffled with the seed and grouped by user. For a user with
``n`` pairs, RecBole's ``_calcu_split_ids`` sizes the parts: valid ``floor(0.1 n)``, test
``floor(0.1 n)``, train the rest; then, while train keeps more than one pair, a part whose
exact share is in ``(0, 1)`` is raised to one pair (test first, then valid). So a user with 3
pairs gets 1/1/1, one with 2 pairs gets 1/0/1, one with 1 pair keeps it in train. Evaluation
ranks all items, excluding each user's training items.
"""

from __future__ import annotations

import numpy as np

from fusionrec.data.protocols._common import (check_ratios, distinct_pair_rows, group_by_user,
                                              positives, standard_features)
from fusionrec.data.schema import Dataset
from fusionrec.data.split import Split

NAME = "topk-random"
TASK = "topk"
features = standard_features


def recbole_counts(total: np.ndarray, ratios) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, valid, test) sizes per group of ``total`` rows, as RecBole computes them."""
    total = np.asarray(total, dtype=np.int64)
    norm = [r / sum(ratios) for r in ratios]
    counts = [np.floor(r * total).astype(np.int64) for r in norm]
    counts[0] = total - counts[1] - counts[2]
    for part in (2, 1):  # RecBole walks from the last part backwards
        exact = norm[part] * total
        bump = (counts[0] > 1) & (exact > 0) & (exact < 1)
        counts[part] = counts[part] + bump
        counts[0] = counts[0] - bump
    return counts[0], counts[1], counts[2]


def split(dataset: Dataset, seed: int = 0, *, ratios=(0.8, 0.1, 0.1)) -> Split:
    ratios = check_ratios(NAME, ratios)
    inter = dataset.interactions
    rng = np.random.default_rng(seed)
    rows = distinct_pair_rows(inter, dataset.n_items, order=rng.permutation(len(inter)))
    order, position, size = group_by_user(inter.user[rows])
    n_train, n_valid, _ = recbole_counts(size, ratios)
    part = np.where(position < n_train, 0, np.where(position < n_train + n_valid, 1, 2))
    picked = rows[order]
    user, item = inter.user[picked], inter.item[picked]
    train, valid, test = (positives(user[part == p], item[part == p]) for p in range(3))
    return Split(NAME, TASK, seed, train, valid, test, features(dataset, train, valid, test),
                 params={"ratios": list(ratios)})
