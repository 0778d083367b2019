"""``loo-temporal``: leave-last-out by time for full-ranking top-K evaluation (RecBole's
``TO`` order with ``split: {LS: valid_and_test}``).

Each user's distinct items are ordered by timestamp (ties keep file order; a repeated pair
counts at its earliest event). The last goes to test, the one before to valid, the rest to
train; as in RecBole at least one pair stays in train, so a user with two pairs has no valid
pair and a user with one pair only trains.
"""

from __future__ import annotations

import numpy as np

from fusionrec.data.protocols._common import (ProtocolError, distinct_pair_rows, group_by_user,
                                              positives, standard_features)
from fusionrec.data.schema import Dataset
from fusionrec.data.split import Split

NAME = "loo-temporal"
TASK = "topk"
features = standard_features


def split(dataset: Dataset, seed: int = 0) -> Split:
    inter = dataset.interactions
    if inter.timestamp is None:
        raise ProtocolError(f"{NAME}: dataset {dataset.name!r} has no interaction timestamps; "
                            "use topk-random, or load timestamps in the interactions source")
    by_time = np.lexsort((np.arange(len(inter)), inter.timestamp))  # stable: file order on ties
    rows = distinct_pair_rows(inter, dataset.n_items, order=by_time)
    order, position, size = group_by_user(inter.user[rows])
    held = np.minimum(2, size - 1)  # how many of the user's last pairs leave train
    from_end = size - position  # 1 = the user's last pair
    part = np.where(from_end > held, 0, np.where(from_end == 1, 2, 1))
    picked = rows[order]
    user, item = inter.user[picked], inter.item[picked]
    train, valid, test = (positives(user[part == p], item[part == p]) for p in range(3))
    return Split(NAME, TASK, seed, train, valid, test, features(dataset, train, valid, test),
                 params={})
