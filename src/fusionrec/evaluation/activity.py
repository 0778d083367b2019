"""Sparse-user breakdown: top-K metrics by the user's number of training interactions.

Side sources should matter most for users the interactions say little about; the overall mean
hides that, because active users dominate it. Each evaluated user falls into one bucket by the
count of their training positives (``split.train``); every bucket gets the full
``ranking_metrics`` over its users. Bucket ``0`` holds users with no training interaction at
all (cold users); it is empty on warm protocols.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from fusionrec.data.split import Split
from fusionrec.metrics import ranking_metrics

#: (label, lowest count, highest count or None for open-ended)
BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0", 0, 0), ("1-5", 1, 5), ("6-20", 6, 20), ("21-50", 21, 50), (">50", 51, None))


@dataclass(frozen=True)
class ActivityBucket:
    """Users with ``low..high`` training interactions (``high`` None: no upper bound)."""

    label: str
    low: int
    high: int | None
    n_users: int
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class ActivityBreakdown:
    buckets: tuple[ActivityBucket, ...]

    def bucket(self, label: str) -> ActivityBucket:
        return next(b for b in self.buckets if b.label == label)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{label: {"n_users": n, "metrics": {...}}}`` in bucket order."""
        return {b.label: {"n_users": b.n_users, "metrics": dict(b.metrics)}
                for b in self.buckets}


def training_counts(split: Split) -> np.ndarray:
    """``(n_users,)`` number of distinct training positives per user."""
    pos = split.train.positives()
    # link splits pair users with users: their "items" can run past n_items
    n = max(split.features.n_items, int(pos.item.max(initial=-1)) + 1)
    keys = np.unique(pos.user.astype(np.int64) * n + pos.item)
    return np.bincount(keys // n, minlength=split.features.n_users)


def activity_breakdown(users: np.ndarray, recommended: np.ndarray,
                       relevant: Sequence[np.ndarray], counts: np.ndarray,
                       ks: Sequence[int] = (10, 20), n_items: int | None = None
                       ) -> ActivityBreakdown:
    """Per bucket, ``ranking_metrics`` of the rows of ``users`` whose training count
    (``counts[user]``) falls in it; an empty bucket has ``n_users`` 0 and no metrics."""
    per_user = np.asarray(counts)[np.asarray(users, dtype=np.int64)]
    buckets = []
    for label, low, high in BUCKETS:
        rows = np.flatnonzero((per_user >= low) & (per_user <= (np.inf if high is None
                                                                  else high)))
        metrics = (ranking_metrics(recommended[rows], [relevant[i] for i in rows], ks, n_items)
                   if rows.size else {})
        buckets.append(ActivityBucket(label, low, high, int(rows.size), metrics))
    return ActivityBreakdown(tuple(buckets))
