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


# -- cold start --------------------------------------------------------------------------------
# A cold entity has no interactions yet, so nothing users produced *about* it can exist either.
# Held-out-pair filtering is not enough: an anonymous tag, or a tag by a user who never rated
# the item, still describes a cold item with words users wrote after interacting with it.


def strip_user_content(dataset: Dataset, *, items=None, users=None,
                       keep: np.ndarray | None = None) -> Dataset:
    """``dataset`` without user-produced side rows (tag assignments, reviews) on ``items`` (by
    anyone, anonymous tags included) or by ``users``; rows whose (user, item) key is in ``keep``
    stay (a cold user's ``user_shots`` pairs). Interactions are left to the protocol."""
    n = dataset.n_items
    keep = np.zeros(0, np.int64) if keep is None else np.asarray(keep, np.int64)

    def hit(user, item) -> np.ndarray:
        out = np.zeros(len(item), dtype=bool)
        if items is not None:
            out |= np.isin(item, items)
        if users is not None and user is not None:
            out |= np.isin(user, users)
        if user is not None and keep.size:
            out &= ~((user >= 0) & np.isin(pair_keys(user, item, n), keep))
        return out

    changes = {}
    attrs = dataset.item_attributes
    if attrs is not None and attrs.tags is not None:
        drop = hit(attrs.tags.user, attrs.tags.item)
        if drop.any():
            changes["item_attributes"] = type(attrs)(attrs.attributes, attrs.tags.take(~drop))
    if dataset.reviews is not None:
        drop = hit(dataset.reviews.user, dataset.reviews.item)
        if drop.any():
            changes["reviews"] = dataset.reviews.take(~drop)
    return dataset.replace(**changes) if changes else dataset


def find_cold_leaks(split: "Split") -> dict[str, int]:
    """Rows of ``split.features`` that say something users produced about a cold entity of a
    cold-start split (all zeros when clean): interactions, tag assignments and reviews on a
    cold item, or by a cold user outside that user's training (``user_shots``) pairs. Empty
    for a split without cold entities."""
    cold = split.cold
    if cold is None:
        return {}
    features, n = split.features, split.features.n_items
    shots = np.unique(pair_keys(split.train.user, split.train.item, n))

    def count(user, item) -> int:
        if user is None and cold.kind == "users":
            return 0
        if cold.kind == "items":
            return int(np.isin(item, cold.entities).sum())
        mine = np.isin(user, cold.entities)
        return int((mine & ~np.isin(pair_keys(user, item, n), shots)).sum())

    inter = features.interactions
    out = {"interactions": count(inter.user, inter.item)}
    attrs = features.item_attributes
    if attrs is not None and attrs.tags is not None:
        out["tags"] = count(attrs.tags.user, attrs.tags.item)
    if features.reviews is not None:
        out["reviews"] = count(features.reviews.user, features.reviews.item)
    return out
