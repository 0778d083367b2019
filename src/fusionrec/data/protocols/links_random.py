"""``links-random``: a seeded random split of undirected friendships into train/valid/test
(default 8:1:1) for "people you may know" (user→user link prediction).

The social source is read as undirected: every edge is reduced to one unordered pair
``{a, b}`` (duplicates, both stored directions and self-loops collapse), the distinct pairs are
shuffled with the seed and cut by ``ratios`` (sized as ``topk-random`` sizes a user's rows). Each part then holds *both* directions of its
pairs, so ``(a, b)`` and ``(b, a)`` always sit in the same part and both endpoints are
evaluated users. ``Pairs.item`` holds the friend's *user* index (task ``"links"``).

``features`` keeps every other source as it is (interactions, texts, attributes are not held
out here) but its ``social`` table holds the training friendships only, so no model, text or
explanation built from ``split.features`` can see a held-out friendship.
"""

from __future__ import annotations

import numpy as np

from fusionrec.data.protocols._common import ProtocolError, check_ratios, positives
from fusionrec.data.protocols.topk_random import recbole_counts
from fusionrec.data.schema import Dataset, Social
from fusionrec.data.split import Pairs, Split

NAME = "links-random"
TASK = "links"


def undirected_pairs(social: Social) -> tuple[np.ndarray, np.ndarray]:
    """Distinct unordered friendships ``(low, high)`` with ``low < high``, sorted; self-loops
    are dropped (nobody is recommended to themself)."""
    low = np.minimum(social.source, social.target)
    high = np.maximum(social.source, social.target)
    keep = low != high
    n = int(max(high.max(initial=-1), 0)) + 1
    keys = np.unique(low[keep] * n + high[keep])
    return keys // n, keys % n


def both_directions(low: np.ndarray, high: np.ndarray) -> Pairs:
    return positives(np.concatenate([low, high]), np.concatenate([high, low]))


def split(dataset: Dataset, seed: int = 0, *, ratios=(0.8, 0.1, 0.1)) -> Split:
    ratios = check_ratios(NAME, ratios)
    if dataset.social is None or not len(dataset.social):
        raise ProtocolError(f"{NAME}: dataset {dataset.name!r} has no social source to split")
    low, high = undirected_pairs(dataset.social)
    order = np.random.default_rng(seed).permutation(len(low))
    # RecBole's sizing (as topk-random): floors, and a tiny graph still gets one valid and
    # one test friendship while train keeps more than one
    n_train, n_valid, _ = (int(c[0]) for c in recbole_counts(np.array([len(low)]), ratios))
    cuts = (order[:n_train], order[n_train:n_train + n_valid], order[n_train + n_valid:])
    train, valid, test = (both_directions(low[np.sort(rows)], high[np.sort(rows)])
                          for rows in cuts)
    return Split(NAME, TASK, seed, train, valid, test, features(dataset, train, valid, test),
                 params={"ratios": list(ratios)})


def features(dataset: Dataset, train: Pairs, valid: Pairs, test: Pairs) -> Dataset:
    """``dataset`` whose social table is exactly the training friendships (one row per
    unordered pair, undirected); ``valid``/``test`` are never read."""
    if dataset.social is None:
        raise ProtocolError(f"{NAME}: dataset {dataset.name!r} has no social source")
    pos = train.positives()
    one_way = pos.user < pos.item
    social = Social(pos.user[one_way], pos.item[one_way], directed=False)
    return dataset.replace(social=social)
