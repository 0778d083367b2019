"""Re-indexing a dataset onto another user vocabulary: how forgotten users leave every table.

Forgetting keeps user indices stable (a model's rows stay where they are): the forgotten
user's slot in ``users.json`` becomes a *tombstone* id with no data. Reloading a run then
aligns the freshly loaded dataset onto the run's vocabulary, so rows of users the run no
longer knows (the forgotten ones, whether or not the data owner has purged them from the
source files yet) are dropped from every table: interactions, social edges, reviews, tag
assignments, and user attribute rows.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from fusionrec.data.schema import Attributes, Dataset, ItemAttributes, Vocabulary

#: Prefix of the id that takes a forgotten user's place in ``users.json``.
TOMBSTONE = "~forgotten~"


def is_tombstone(raw: str) -> bool:
    return str(raw).startswith(TOMBSTONE)


def tombstoned(users: Vocabulary, index: int) -> Vocabulary:
    """``users`` with the id at ``index`` replaced by the next free tombstone id (a counter,
    so it says nothing about whom it replaced)."""
    ids = list(users.ids)
    taken = sum(is_tombstone(raw) for raw in ids)
    ids[index] = f"{TOMBSTONE}{taken}"
    return Vocabulary(tuple(ids))


def align_users(dataset: Dataset, users: Vocabulary) -> Dataset:
    """``dataset`` re-indexed onto ``users``: rows of users missing from ``users`` are
    dropped; users of ``users`` missing from the dataset (tombstones) get no rows."""
    if dataset.users.ids == users.ids:
        return dataset
    new = users.indices(dataset.users.ids)  # old index -> new index, -1 when dropped
    old = dataset.users.indices(users.ids)  # new index -> old index, -1 for a tombstone
    inter = dataset.interactions
    keep = new[inter.user] >= 0
    changes: dict = {"users": users, "interactions": dataclasses.replace(
        inter.take(keep), user=new[inter.user[keep]])}
    if dataset.user_attributes is not None:
        changes["user_attributes"] = Attributes({
            name: _rows(np.asarray(col), old) for name, col in
            dataset.user_attributes.columns.items()})
    social = dataset.social
    if social is not None:
        keep = (new[social.source] >= 0) & (new[social.target] >= 0)
        weight = None if social.weight is None else social.weight[keep]
        changes["social"] = dataclasses.replace(social, source=new[social.source[keep]],
                                                target=new[social.target[keep]], weight=weight)
    reviews = dataset.reviews
    if reviews is not None:
        index = np.flatnonzero(new[reviews.user] >= 0)
        changes["reviews"] = dataclasses.replace(reviews.take(index),
                                                 user=new[reviews.user[index]])
    attrs = dataset.item_attributes
    if attrs is not None and attrs.tags is not None and attrs.tags.user is not None:
        tags = attrs.tags
        mapped = np.where(tags.user >= 0, new[np.maximum(tags.user, 0)], -1)
        keep = (tags.user < 0) | (mapped >= 0)  # a forgotten user's tagging goes with them
        changes["item_attributes"] = ItemAttributes(attrs.attributes, dataclasses.replace(
            tags.take(keep), user=mapped[keep]))
    return dataset.replace(**changes)


def _rows(column: np.ndarray, old: np.ndarray) -> np.ndarray:
    """Column values in the new order; ``""`` (strings) or NaN (numbers) for tombstones."""
    if column.dtype.kind in "fc":
        fill = np.nan
    elif column.dtype.kind in "iub":
        column, fill = column.astype(np.float64), np.nan
    else:
        column, fill = column.astype(object), ""
    out = column[np.maximum(old, 0)].copy()
    out[old < 0] = fill
    return out


def run_users(run_dir: str | Path) -> Vocabulary:
    from fusionrec.training.artifacts import USERS_FILE

    return Vocabulary(tuple(json.loads((Path(run_dir) / USERS_FILE).read_text(
        encoding="utf-8"))))


def align_to_run(dataset: Dataset, run_dir: str | Path) -> Dataset:
    """``dataset`` aligned onto the user vocabulary of the run folder ``run_dir``."""
    return align_users(dataset, run_users(run_dir))
