"""What ``cold-items`` and ``cold-users`` share: drawing the cold entities, assigning their
pairs to valid/test by entity, the candidate items, and the cold leak-free ``features``.

The two protocols are mirror images (an entity is an item or a user), so one implementation
serves both; their modules only fix ``kind`` and the public parameters.
"""

from __future__ import annotations

import numpy as np

from fusionrec.data.leakage import pair_keys, strip_user_content
from fusionrec.data.protocols._common import (ProtocolError, distinct_pair_rows, group_by_user,
                                              positives, standard_features)
from fusionrec.data.schema import Dataset
from fusionrec.data.split import ColdKind, ColdStart, Pairs, Split

RANK_AMONG = ("cold", "all")
_ORDER_STREAM = 211  # the seeded pair order (no timestamps) draws apart from the cold draw


def check_params(name: str, cold_fraction, valid_share, rank_among, user_shots=0) -> None:
    if isinstance(cold_fraction, bool) or not 0 < float(cold_fraction) < 1:
        raise ProtocolError(f"{name}: cold_fraction must be in (0, 1), got {cold_fraction!r}")
    if isinstance(valid_share, bool) or not 0 <= float(valid_share) < 1:
        raise ProtocolError(f"{name}: valid_share must be in [0, 1), got {valid_share!r}")
    if rank_among not in RANK_AMONG:
        raise ProtocolError(f"{name}: rank_among must be one of {RANK_AMONG}, "
                            f"got {rank_among!r}")
    if isinstance(user_shots, bool) or not isinstance(user_shots, (int, np.integer)) \
            or user_shots < 0:
        raise ProtocolError(f"{name}: user_shots must be an int >= 0, got {user_shots!r}")


def ordered_pair_rows(dataset: Dataset, seed: int) -> np.ndarray:
    """Rows of the distinct (user, item) pairs, oldest first (a repeated pair counts at its
    earliest event, ties keep file order); without timestamps, in a seeded random order."""
    inter = dataset.interactions
    if inter.timestamp is not None:
        order = np.lexsort((np.arange(len(inter)), inter.timestamp))
    else:
        order = np.random.default_rng([seed, _ORDER_STREAM]).permutation(len(inter))
    return distinct_pair_rows(inter, dataset.n_items, order=order)


def draw_cold(name: str, entity: np.ndarray, seed: int, cold_fraction: float,
              valid_share: float) -> tuple[np.ndarray, np.ndarray]:
    """(valid, test) cold entities: a seeded ``cold_fraction`` of the entities that have at
    least one pair, ``valid_share`` of them for validation."""
    eligible = np.unique(entity)
    n_cold = int(round(float(cold_fraction) * eligible.size))
    if n_cold < 2:
        raise ProtocolError(f"{name}: cold_fraction={cold_fraction} of {eligible.size} "
                            "entities leaves fewer than 2 cold ones (need valid and test)")
    n_valid = min(int(round(float(valid_share) * n_cold)), n_cold - 1)
    drawn = np.random.default_rng(seed).permutation(eligible)[:n_cold]
    return np.sort(drawn[:n_valid]), np.sort(drawn[n_valid:])


def cold_split(dataset: Dataset, seed: int, name: str, kind: ColdKind, cold_fraction: float,
               valid_share: float, rank_among: str, user_shots: int = 0
               ) -> tuple[Pairs, Pairs, Pairs]:
    """(train, valid, test) positives: every pair of a cold entity in valid or test (by
    entity), except a cold user's first ``user_shots`` pairs, which stay in train (at most all
    but one, so every cold user keeps a held-out pair)."""
    check_params(name, cold_fraction, valid_share, rank_among, user_shots)
    inter = dataset.interactions
    rows = ordered_pair_rows(dataset, seed)
    user, item = inter.user[rows], inter.item[rows]
    entity = item if kind == "items" else user
    valid_cold, test_cold = draw_cold(name, entity, seed, cold_fraction, valid_share)
    part = np.where(np.isin(entity, valid_cold), 1, np.where(np.isin(entity, test_cold), 2, 0))
    if kind == "users" and user_shots:
        order, position, size = group_by_user(user)  # keeps each user's time order
        shot = np.zeros(len(rows), dtype=bool)
        shot[order] = position < np.minimum(int(user_shots), size - 1)
        part = np.where(shot, 0, part)
    return tuple(positives(user[part == p], item[part == p]) for p in range(3))


def cold_start(kind: ColdKind, valid: Pairs, test: Pairs, rank_among: str) -> ColdStart:
    """The :class:`ColdStart` of a split, derived from its parts alone (so a reloaded manifest
    gets the same one): the cold entities are those of valid and test; with ``rank_among:
    cold`` each part is ranked among its own items -- for ``cold-items`` exactly its cold
    items, for ``cold-users`` the items its cold users interacted with."""
    column = "item" if kind == "items" else "user"
    entities = np.unique(np.r_[getattr(valid, column), getattr(test, column)])
    if rank_among == "all":
        return ColdStart(kind, entities)
    return ColdStart(kind, entities, np.unique(valid.item), np.unique(test.item))


def cold_features(kind: ColdKind, dataset: Dataset, train: Pairs, valid: Pairs, test: Pairs
                  ) -> Dataset:
    """The standard leak-free features, then every user-produced row about a cold entity
    removed: tags and reviews on a cold item by anyone, or by a cold user on any item other
    than their training (``user_shots``) pairs."""
    features = standard_features(dataset, train, valid, test)
    if kind == "items":
        return strip_user_content(features, items=np.unique(np.r_[valid.item, test.item]))
    keep = pair_keys(train.user, train.item, dataset.n_items)
    return strip_user_content(features, users=np.unique(np.r_[valid.user, test.user]),
                              keep=keep)


def make_cold_split(dataset: Dataset, seed: int, name: str, task: str, kind: ColdKind,
                    params: dict) -> Split:
    train, valid, test = cold_split(dataset, seed, name, kind, **params)
    return Split(name, task, seed, train, valid, test,
                 cold_features(kind, dataset, train, valid, test), params=dict(params),
                 cold=cold_start(kind, valid, test, params["rank_among"]))
