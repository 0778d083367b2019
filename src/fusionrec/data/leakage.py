"""Keep held-out (user, item) pairs out of every source a model may read.

Interactions are not the only source that pairs a user with an item: a tag assignment with a
known tagging user and a review both say "this user engaged with this item". A protocol that
holds a pair out must therefore drop those rows too, or a model (or an item profile built from
tags/reviews) would see the answer. Everything here works on ``user * n_items + item`` keys so
each check is one vectorised ``np.isin``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fusionrec.data.schema import Dataset

if TYPE_CHECKING:
    from fusionrec.data.split import Pairs, Split


def pair_keys(users, items, n_items: int) -> np.ndarray:
    """One int64 key per (user, item) pair: ``user * n_items + item``."""
    return np.asarray(users, dtype=np.int64) * int(n_items) + np.asarray(items, dtype=np.int64)


def heldout_keys(n_items: int, *parts: "Pairs") -> np.ndarray:
    """Sorted distinct keys of every (user, item) row in ``parts``, whatever its label: a held-out
    negative is as telling as a positive if a side source shows the user with that item."""
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate([pair_keys(p.user, p.item, n_items) for p in parts]))


def filter_side_sources(dataset: Dataset, heldout: np.ndarray) -> Dataset:
    """``dataset`` with every side-source row whose (user, item) key is in ``heldout`` removed.

    Removes tag assignments by a known user (rows with ``user == -1`` carry no pair and stay)
    and reviews. Rows pairing a user with an item that is not held out are kept, including tags
    on items the user never interacted with. Interactions are left alone: the protocol decides
    them. ``heldout`` is an array of :func:`pair_keys` (see :func:`heldout_keys`).
    """
    heldout = np.asarray(heldout, dtype=np.int64)
    changes = {}
    attrs = dataset.item_attributes
    if attrs is not None and attrs.tags is not None and attrs.tags.user is not None:
        tags = attrs.tags
        hit = (tags.user >= 0) & np.isin(pair_keys(tags.user, tags.item, dataset.n_items), heldout)
        if hit.any():
            changes["item_attributes"] = type(attrs)(attrs.attributes, tags.take(~hit))
    if dataset.reviews is not None:
        reviews = dataset.reviews
        hit = np.isin(pair_keys(reviews.user, reviews.item, dataset.n_items), heldout)
        if hit.any():
            changes["reviews"] = reviews.take(~hit)
    return dataset.replace(**changes) if changes else dataset


def visible_pairs(features: Dataset) -> dict[str, np.ndarray]:
    """Per source, the distinct (user, item) keys a model reading ``features`` can see."""
    n = features.n_items
    inter = features.interactions
    out = {"interactions": np.unique(pair_keys(inter.user, inter.item, n))}
    attrs = features.item_attributes
    if attrs is not None and attrs.tags is not None and attrs.tags.user is not None:
        tags = attrs.tags
        known = tags.user >= 0
        out["tags"] = np.unique(pair_keys(tags.user[known], tags.item[known], n))
    if features.reviews is not None:
        out["reviews"] = np.unique(pair_keys(features.reviews.user, features.reviews.item, n))
    return out


def visible_friendships(features: Dataset) -> np.ndarray:
    """Distinct ``user * n_users + friend`` keys of ``features.social``, in both directions (an
    undirected edge shows each endpoint the other)."""
    if features.social is None:
        return np.zeros(0, dtype=np.int64)
    source, target = features.social.both_directions()
    return np.unique(pair_keys(source, target, features.n_users))


def find_leaks(split: "Split") -> dict[str, int]:
    """Number of held-out (valid/test) pairs visible through each source of ``split.features``;
    all zeros for a leak-free split. For link splits (task ``links``) the held-out pairs are
    friendships, counted in either direction in the social source."""
    if split.task == "links":
        n = split.features.n_users
        held = heldout_keys(n, split.valid, split.test)
        return {"social": int(np.isin(visible_friendships(split.features), held).sum())}
    held = heldout_keys(split.features.n_items, split.valid, split.test)
    return {name: int(np.isin(keys, held).sum())
            for name, keys in visible_pairs(split.features).items()}


def assert_no_leakage(split: "Split") -> None:
    """Raise ``AssertionError`` naming the sources through which held-out pairs are visible."""
    leaks = {name: count for name, count in find_leaks(split).items() if count}
    if leaks:
        raise AssertionError(f"{split.protocol}: held-out pairs visible in features: {leaks}")
