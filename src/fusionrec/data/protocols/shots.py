"""Generic k-shot training for any protocol: ``protocol.params.shots: k``.

``fewshot-tallrec`` draws its own shots; every other protocol accepts two extra parameters:

- ``shots``: the protocol splits as usual, then its train part is cut to ``k`` rows drawn
  uniformly with the seed (``0`` leaves no training row: the zero-shot setting). Valid and test
  are untouched.
- ``history`` (default 10; only with ``shots``): every row of every part carries its user's
  ``history`` most recent interactions from the *full* train part (timestamps, then file order;
  labels ``rating > 3`` where there are ratings, else liked) as ``Pairs.history_items/labels``,
  never listing the row's own item. As in TALLRec's records, the history is input, not training
  data: models that read row histories (``score_pairs``) see it, while ``split.features`` is
  derived from the ``k`` rows alone (its interactions are their positives), so nothing else
  the other training pairs would reveal -- popularity, friends' likes -- reaches a model.
  ``history: 0`` attaches none.

Seeds: the split and the shot draw both follow the protocol seed, so each seed re-draws both.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fusionrec.data.protocols._common import ProtocolError
from fusionrec.data.schema import Dataset
from fusionrec.data.split import Pairs, Split

#: Parameters :func:`apply_shots` adds to protocols that do not define them.
GENERIC_PARAMS = {"shots": None, "history": 10}
#: Labels from ratings above this (the TALLRec / MovieLens "liked" rule).
LIKE_ABOVE = 3.0
_SHOT_STREAM = 101  # the shot draw's own random stream, apart from the protocol's


def recent_history(features: Dataset, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n_users, size)`` most recent items of each user in ``features.interactions``
    (oldest first, ``-1``-padded on the left) and their 0/1 like labels."""
    inter = features.interactions
    items = np.full((features.n_users, size), -1, dtype=np.int64)
    labels = np.zeros((features.n_users, size), dtype=np.float32)
    if len(inter) == 0 or size == 0:
        return items, labels
    stamp = inter.timestamp if inter.timestamp is not None else np.zeros(len(inter))
    order = np.lexsort((np.arange(len(inter)), stamp, inter.user))  # user, time, file order
    user = inter.user[order]
    last = np.r_[user[1:] != user[:-1], True]
    end = np.flatnonzero(last)[np.cumsum(np.r_[0, last[:-1]])]      # last row of each user
    from_end = end - np.arange(len(order))                          # 0 = most recent
    keep = from_end < size
    liked = (inter.rating[order] > LIKE_ABOVE if inter.rating is not None
             else np.ones(len(order), dtype=bool)).astype(np.float32)
    column = size - 1 - from_end[keep]
    items[user[keep], column] = inter.item[order][keep]
    labels[user[keep], column] = liked[keep]
    return items, labels


def _with_history(pairs: Pairs, table: tuple[np.ndarray, np.ndarray], size: int) -> Pairs:
    """``pairs`` with each user's history attached, the row's own item taken out (the table
    holds one entry more than ``size``, so a training positive keeps ``size`` entries)."""
    items, labels = table[0][pairs.user].copy(), table[1][pairs.user].copy()
    items[items == pairs.item[:, None]] = -1
    order = np.argsort(items >= 0, axis=1, kind="stable")  # blanks first, rest in order
    items = np.take_along_axis(items, order, axis=1)[:, -size:]
    labels = np.take_along_axis(labels, order, axis=1)[:, -size:]
    labels[items < 0] = 0.0
    return Pairs(pairs.user, pairs.item, pairs.label, items, labels)


def apply_shots(dataset: Dataset, split: Split, features_rule, shots: int,
                history: int = 10) -> Split:
    """``split`` with its train part cut to ``shots`` rows (see the module docstring);
    ``features_rule`` is the protocol's ``features(dataset, train, valid, test)``."""
    if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) \
            or not 0 <= shots <= len(split.train):
        raise ProtocolError(f"{split.protocol}: shots must be an int in 0..{len(split.train)}, "
                            f"got {shots!r}")
    if isinstance(history, bool) or not isinstance(history, (int, np.integer)) or history < 0:
        raise ProtocolError(f"{split.protocol}: history must be an int >= 0, got {history!r}")
    rng = np.random.default_rng([split.seed, _SHOT_STREAM])
    train = split.train.take(np.sort(rng.permutation(len(split.train))[:shots]))
    valid, test = split.valid, split.test
    if history:
        table = recent_history(split.features, history + 1)
        train, valid, test = (_with_history(p, table, history) for p in (train, valid, test))
    return dataclasses.replace(split, train=train, valid=valid, test=test,
                               features=features_rule(dataset, train, valid, test),
                               params={**split.params, "shots": int(shots),
                                       "history": int(history)})
