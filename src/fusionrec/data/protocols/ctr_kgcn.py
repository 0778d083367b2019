"""``ctr-kgcn``: the CTR protocol of KGCN / KGNN-LS / CKAN on Last.FM.

Every observed (user, item) pair is a positive (KGCN's Last.FM threshold is "listened at all";
``min_rating`` narrows that for explicit feedback). For each user, as many unobserved items as
the user has positives are drawn uniformly without replacement as negatives. The labelled rows
(each user's positives then negatives, users in order of first appearance) are split at random:
``int(n * valid)`` rows to valid, ``int(n * test)`` to test, the rest to train — the sizes of
KGCN's ``dataset_split`` (6:2:2). Each part keeps that random order, as KGCN's evaluation
batches do. On ``lastfm-kg`` this gives 1,872 users, 3,846 items and 42,346 labelled rows.
"""

from __future__ import annotations

import numpy as np

from fusionrec.data.protocols._common import (ProtocolError, check_ratios, distinct_pair_rows,
                                              group_by_user, standard_features)
from fusionrec.data.schema import Dataset
from fusionrec.data.split import Pairs, Split

NAME = "ctr-kgcn"
TASK = "ctr"
features = standard_features


def _labelled_rows(users, items, n_items, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per user: its positives, then one sampled unobserved item per positive (label 0)."""
    order, position, size = group_by_user(users)
    starts = np.flatnonzero(position == 0)
    sorted_items = items[order]
    all_items = np.arange(n_items, dtype=np.int64)
    out_user, out_item, out_label = [], [], []
    for start in starts:
        count = int(size[start])
        user = users[order[start]]
        pos = sorted_items[start:start + count]
        pool = np.setdiff1d(all_items, pos, assume_unique=True)
        if count <= pool.size:
            neg = rng.choice(pool, size=count, replace=False)
        else:  # too few unseen items for distinct negatives: use each, then repeat some
            neg = np.r_[rng.permutation(pool), rng.choice(pool, count - pool.size)] \
                if pool.size else pos[:0]
        out_user.append(np.full(count + neg.size, user, dtype=np.int64))
        out_item.append(np.concatenate([pos, neg]))
        out_label.append(np.r_[np.ones(count, np.float32), np.zeros(neg.size, np.float32)])
    if not out_user:
        raise ProtocolError(f"{NAME}: the dataset has no interactions to label")
    return np.concatenate(out_user), np.concatenate(out_item), np.concatenate(out_label)


def split(dataset: Dataset, seed: int = 0, *, ratios=(0.6, 0.2, 0.2),
          min_rating: float | None = None) -> Split:
    train_r, valid_r, test_r = check_ratios(NAME, ratios)
    inter = dataset.interactions
    rows = distinct_pair_rows(inter, dataset.n_items)
    if min_rating is not None:
        if inter.rating is None:
            raise ProtocolError(f"{NAME}: min_rating={min_rating} needs ratings, "
                                f"but dataset {dataset.name!r} has none")
        rows = rows[inter.rating[rows] >= min_rating]
    rng = np.random.default_rng(seed)
    user, item, label = _labelled_rows(inter.user[rows], inter.item[rows], dataset.n_items, rng)
    total = train_r + valid_r + test_r
    n = user.size
    n_valid, n_test = int(n * valid_r / total), int(n * test_r / total)
    perm = rng.permutation(n)
    parts = (perm[n_valid + n_test:], perm[:n_valid], perm[n_valid:n_valid + n_test])
    train, valid, test = (Pairs(user[p], item[p], label[p]) for p in parts)
    return Split(NAME, TASK, seed, train, valid, test, features(dataset, train, valid, test),
                 params={"ratios": [train_r, valid_r, test_r], "min_rating": min_rating})
