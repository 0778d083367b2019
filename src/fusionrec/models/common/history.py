"""Per-row interaction histories: the row's own (few-shot records) or the user's training items.

A :class:`Pairs` from the ``fewshot-tallrec`` protocol carries each record's 10 previous
(movie, liked) pairs; other protocols carry none, so the user's most recent training
interactions stand in. Either way a row never lists its own candidate, so a training pair
cannot answer itself from its history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fusionrec.data.schema import Dataset
from fusionrec.data.split import Pairs


@dataclass(frozen=True)
class RowHistory:
    """``items``/``labels``: ``(n_rows, h)``, ``-1``-padded, oldest first (most recent last)."""

    items: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.items)

    @property
    def mask(self) -> np.ndarray:
        return self.items >= 0


def user_histories(features: Dataset, size: int, like_above: float = 3.0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(n_users, size)`` most recent training items per user and their 0/1 labels.

    Labels come from ratings (``> like_above``) when the interactions have them, else 1:
    implicit feedback only ever shows likes.
    """
    inter = features.interactions
    order = np.lexsort((np.arange(len(inter)),
                        inter.timestamp if inter.timestamp is not None else np.zeros(len(inter)),
                        inter.user))  # by user, then time, then file order
    users = inter.user[order]
    items = np.full((features.n_users, size), -1, dtype=np.int64)
    labels = np.zeros((features.n_users, size), dtype=np.float32)
    if len(order) == 0:
        return items, labels
    liked = (inter.rating[order] > like_above if inter.rating is not None
             else np.ones(len(order), dtype=bool)).astype(np.float32)
    ends = np.r_[np.flatnonzero(users[1:] != users[:-1]), len(users) - 1]
    starts = np.r_[0, ends[:-1] + 1]
    for start, end in zip(starts, ends):
        take = slice(max(start, end + 1 - size), end + 1)
        n = take.stop - take.start
        items[users[start], size - n:] = inter.item[order][take]
        labels[users[start], size - n:] = liked[take]
    return items, labels


def row_history(pairs: Pairs, fallback_items: np.ndarray | None,
                fallback_labels: np.ndarray | None, size: int) -> RowHistory:
    """The last ``size`` history entries of every row of ``pairs``, minus the row's own item.

    ``fallback_*`` (from :func:`user_histories`, built one entry longer than ``size``) serve
    rows without their own history; dropping the candidate and then keeping ``size`` entries
    means a training positive's history is as long as a negative's (its length tells nothing).
    """
    if pairs.history_items is not None:
        items = np.array(pairs.history_items, dtype=np.int64)
        labels = np.array(pairs.history_labels, dtype=np.float32)
    elif fallback_items is not None:
        items = np.array(fallback_items[pairs.user], dtype=np.int64)
        labels = np.array(fallback_labels[pairs.user], dtype=np.float32)
    else:
        items = np.full((len(pairs), 1), -1, dtype=np.int64)
        labels = np.zeros((len(pairs), 1), dtype=np.float32)
    items[items == pairs.item[:, None]] = -1
    # Compact each row: blanks first (stable, so the order of the rest survives), keep the tail.
    order = np.argsort(items >= 0, axis=1, kind="stable")
    items = np.take_along_axis(items, order, axis=1)[:, -size:]
    labels = np.take_along_axis(labels, order, axis=1)[:, -size:]
    labels[items < 0] = 0.0
    return RowHistory(np.ascontiguousarray(items), np.ascontiguousarray(labels))


def history_pseudo_rows(pairs: Pairs, min_history: int = 1) -> Pairs:
    """Extra training rows read off the rows' own histories: entry ``j`` of a history becomes a
    row whose target is that entry (label: its like/dislike) and whose history is the entries
    before it (right-aligned, ``-1`` padded). Needs ``pairs.history_items``.

    Every pseudo-row comes from the labelled rows themselves, so a few-shot model still learns
    from nothing but its k records -- ten times as many (item, liked) examples as the records'
    own targets, which is what lets item-level weights (genres, year) be learned at k = 64.
    """
    if pairs.history_items is None:
        return pairs.take(np.zeros(0, dtype=np.int64))
    items, labels = pairs.history_items, pairs.history_labels
    n, h = items.shape
    parts = []
    for j in range(max(min_history, 0), h):
        keep = items[:, j] >= 0
        hist = np.full((n, h), -1, dtype=np.int64)
        hist_labels = np.zeros((n, h), dtype=np.float32)
        hist[:, h - j:], hist_labels[:, h - j:] = items[:, :j], labels[:, :j]
        parts.append(Pairs(pairs.user[keep], items[keep, j], labels[keep, j], hist[keep],
                           hist_labels[keep]))
    if not parts:
        return pairs.take(np.zeros(0, dtype=np.int64))
    return Pairs(*(np.concatenate([getattr(p, f) for p in parts])
                   for f in ("user", "item", "label", "history_items", "history_labels")))
