"""``fewshot-tallrec``: TALLRec's MovieLens-100K few-shot like/dislike protocol.

Recipe (``tallrec-ml100k/PROVENANCE.md``): group the rating rows by user in order of each user's
first row in the file; stable-sort each user's rows by timestamp; label = rating > 3. Every
position ``i >= history`` becomes a record whose target is movie ``i`` and whose context is the
``history`` previous (movie, label) pairs (``Pairs.history_items/labels``). Users are
concatenated in that order, the last ``n_records`` records kept and split in order 80/10/10.
The ``shots``-shot training set is the first ``shots`` records of the train part shuffled by
``np.random.default_rng(seed).permutation`` — the permutation Hugging Face
``datasets.Dataset.shuffle(seed=seed)`` applies, which TALLRec's training script uses.

Needs interactions in file order (as the ml-100k preset loads them), ratings and timestamps.
The ``features`` hold no more than the few-shot records reveal: interactions are the training
targets that are positives (ratings dropped, since a record only reveals like/dislike), and
side-source rows are kept only for pairs those records show (targets or histories).
"""

from __future__ import annotations

import numpy as np

from fusionrec.data.leakage import pair_keys
from fusionrec.data.protocols._common import ProtocolError, check_ratios, training_features
from fusionrec.data.schema import Dataset
from fusionrec.data.split import Pairs, Split

NAME = "fewshot-tallrec"
TASK = "ctr"


def features(dataset: Dataset, train: Pairs, valid: Pairs, test: Pairs) -> Dataset:
    n = dataset.n_items
    shown = [pair_keys(train.user, train.item, n)]
    if train.history_items is not None:
        hist = train.history_items
        users = np.broadcast_to(train.user[:, None], hist.shape)
        shown.append(pair_keys(users[hist >= 0], hist[hist >= 0], n))
    inter = dataset.interactions
    rated = pair_keys(inter.user, inter.item, n)
    held = np.union1d(np.setdiff1d(rated, np.concatenate(shown)),
                      pair_keys(np.r_[valid.user, test.user], np.r_[valid.item, test.item], n))
    return training_features(dataset, train, held, drop_rating=True)


def split(dataset: Dataset, seed: int = 0, *, shots: int | None = None, history: int = 10,
          n_records: int = 10000, like_above: float = 3.0, ratios=(0.8, 0.1, 0.1)) -> Split:
    inter = dataset.interactions
    if inter.rating is None or inter.timestamp is None or len(inter) == 0:
        raise ProtocolError(f"{NAME}: dataset {dataset.name!r} needs ratings and timestamps "
                            "(e.g. the ml-100k preset)")
    ratios = check_ratios(NAME, ratios)
    if history < 1 or n_records < 1:
        raise ProtocolError(f"{NAME}: history and n_records must be >= 1")
    # users in first-appearance order, each user's rows stable-sorted by time
    _, first_row, inverse = np.unique(inter.user, return_index=True, return_inverse=True)
    user_rank = np.argsort(np.argsort(first_row))[inverse]
    order = np.lexsort((np.arange(len(inter)), inter.timestamp, user_rank))
    user, item = inter.user[order], inter.item[order]
    rows = np.arange(len(inter))
    starts = np.r_[True, user[1:] != user[:-1]]
    position = rows - np.maximum.accumulate(np.where(starts, rows, 0))  # rank within the user
    label = (inter.rating[order] > like_above).astype(np.float32)
    targets = np.flatnonzero(position >= history)[-n_records:]
    if targets.size == 0:
        raise ProtocolError(f"{NAME}: no user has more than history={history} ratings")
    back = targets[:, None] - np.arange(history, 0, -1)[None, :]  # (n, history), oldest first
    records = Pairs(user[targets], item[targets], label[targets], item[back], label[back])
    n = targets.size
    total = sum(ratios)
    cut1, cut2 = int(n * ratios[0] / total), int(n * (ratios[0] + ratios[1]) / total)
    train_all = records.take(np.arange(cut1))
    if shots is not None and not 0 <= shots <= len(train_all):  # 0: zero-shot, no train row
        raise ProtocolError(f"{NAME}: shots must be in 0..{len(train_all)}, got {shots}")
    pick = np.random.default_rng(seed).permutation(len(train_all))[:shots]
    train = train_all.take(pick)
    valid, test = records.take(np.arange(cut1, cut2)), records.take(np.arange(cut2, n))
    return Split(NAME, TASK, seed, train, valid, test, features(dataset, train, valid, test),
                 params={"shots": shots, "history": history, "n_records": n_records,
                         "like_above": like_above, "ratios": list(ratios)})
