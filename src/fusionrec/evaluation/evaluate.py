"""Evaluate a fitted model on one part of a Split: CTR metrics or full-ranking top-K metrics.

The model is only asked for ``score`` (CTR) or ``recommend`` (top-K); metrics themselves see
labels and item lists only (``fusionrec.metrics``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from fusionrec.data.split import Pairs, Split
from fusionrec.evaluation.activity import ActivityBreakdown, activity_breakdown, training_counts
from fusionrec.evaluation.cold import candidate_lists
from fusionrec.models.common.cold_start import check_cold_start
from fusionrec.metrics import ctr_metrics, ranking_metrics, sigmoid


@dataclass(frozen=True)
class Evaluation:
    """``metrics`` as :func:`evaluate` returns them; ``by_activity``: the top-K metrics by
    the users' training interactions (None for CTR tasks)."""

    metrics: dict[str, float]
    by_activity: ActivityBreakdown | None = None


def evaluate(model, split: Split, part: str = "test", ks: Sequence[int] = (10, 20),
             threshold: float = 0.5, batch_size: int = 1024,
             exclude_valid_from_test: bool = True, ctr_batch_size: int | None = 128
             ) -> dict[str, float]:
    """Metrics of ``model`` on ``split.part(part)``.

    CTR tasks: ``ctr_metrics`` of ``sigmoid(score)`` (or of ``score`` itself when the model sets
    ``outputs_probabilities = True``). Top-K tasks: every item is ranked for each user with a
    held-out positive (link tasks: every user, for each user with a held-out friendship); the model excludes its training items, and on the test part the user's
    validation items are excluded too (``exclude_valid_from_test``, RecBole's convention), so
    neither can crowd out test items. Users are ranked ``batch_size`` at a time.
    ``ctr_batch_size``: rows per batch of the per-batch mean ``batch_auc``/``batch_f1`` (in the
    part's own order, as KGCN's evaluation batches); None leaves them NaN. CTR metrics also
    hold ``warm_item_auc`` (rows whose item has a training positive) and ``within_item_auc``
    (AUC within each item, which a popularity score cannot move off 0.5), see
    :func:`fusionrec.metrics.item_auc_metrics`.

    Cold-start splits (``split.cold``) rank each part among its candidate items where the
    protocol set them (``rank_among: cold``; coverage is then over the candidates), and raise
    :class:`~fusionrec.data.split.ColdStartUnsupported` for a model that does not declare it
    can score cold entities of that kind (see ``fusionrec.evaluation.cold``).
    """
    return evaluate_detailed(model, split, part, ks, threshold, batch_size,
                             exclude_valid_from_test, ctr_batch_size).metrics


def evaluate_detailed(model, split: Split, part: str = "test", ks: Sequence[int] = (10, 20),
                      threshold: float = 0.5, batch_size: int = 1024,
                      exclude_valid_from_test: bool = True, ctr_batch_size: int | None = 128
                      ) -> Evaluation:
    """:func:`evaluate` plus, for top-K tasks, the sparse-user breakdown (one ranking)."""
    pairs = split.part(part)
    if split.task == "ctr":
        return Evaluation(_ctr(model, pairs, split.train, threshold, ctr_batch_size))
    users, recommended, relevant = ranked_lists(model, split, part, max(int(x) for x in ks),
                                                batch_size, exclude_valid_from_test)
    candidates = split.cold.candidates(part) if split.cold is not None else None
    n_items = n_candidates(split) if candidates is None else len(candidates)
    return Evaluation(ranking_metrics(recommended, relevant, ks=ks, n_items=n_items),
                      activity_breakdown(users, recommended, relevant, training_counts(split),
                                         ks, n_items))


def n_candidates(split: Split) -> int:
    """How many candidates a top-K list ranks: every item, or for link splits (task
    ``links``, user→user) every user (the model excludes the user and their training friends)."""
    return split.features.n_users if split.task == "links" else split.features.n_items


def _ctr(model, pairs: Pairs, train: Pairs, threshold: float, batch_size: int | None
         ) -> dict[str, float]:
    return ctr_metrics(pairs.label, ctr_probabilities(model, pairs), threshold=threshold,
                       batch_size=batch_size, items=pairs.item,
                       warm_items=train.positives().item)


def ctr_probabilities(model, pairs: Pairs) -> np.ndarray:
    """Predicted click probability of every row of ``pairs`` (``sigmoid(score)``, or the score
    itself for models with ``outputs_probabilities = True``)."""
    # Rows that carry their own history (few-shot records) go to ``score_pairs`` (a model that
    # reads no history scores them as ``score`` would); ``score(users, items)`` cannot see it.
    if pairs.history_items is not None:
        chunks = [np.asarray(model.score_pairs(pairs.take(np.arange(s, min(s + 65536,
                                                                           len(pairs))))),
                             dtype=np.float64) for s in range(0, len(pairs), 65536)]
    else:
        chunks = [np.asarray(model.score(pairs.user[s:s + 65536], pairs.item[s:s + 65536]),
                             dtype=np.float64) for s in range(0, len(pairs), 65536)]
    scores = np.concatenate(chunks) if chunks else np.zeros(0)
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{type(model).__name__}.score returned non-finite values")
    return scores if model.outputs_probabilities else sigmoid(scores)


def _group(pairs: Pairs) -> tuple[np.ndarray, list[np.ndarray]]:
    """Distinct users (sorted) and each one's items."""
    order = np.lexsort((pairs.item, pairs.user))
    users, starts = np.unique(pairs.user[order], return_index=True)
    return users, np.split(pairs.item[order], starts[1:])


def ranked_lists(model, split: Split, part: str = "test", k: int = 10, batch_size: int = 1024,
                 exclude_valid_from_test: bool = True
                 ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """``(users, recommended (n, k), relevant)``: the top-``k`` lists ``evaluate`` scores on
    ``part`` (same exclusions), one row per user with a held-out positive, users sorted."""
    extra = split.valid.positives() if part == "test" and exclude_valid_from_test else None
    positives = split.part(part).positives()
    candidates = split.cold.candidates(part) if split.cold is not None else None
    check_cold_start(model, split, part)
    if candidates is not None:
        users, relevant = _group(positives)
        exclude = split.train.positives() if extra is None else _concat(split.train.positives(),
                                                                        extra)
        return users, candidate_lists(model, users, exclude, candidates, int(k),
                                      split.features.n_items), relevant
    return _ranked(model, positives, extra, int(k), n_candidates(split), batch_size)


def _ranked(model, positives: Pairs, extra: Pairs | None, k: int, n_items: int,
            batch_size: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    users, relevant = _group(positives)
    extra_keys = np.zeros(0, dtype=np.int64)
    budget = np.zeros(len(users), dtype=np.int64)  # extra list length needed per user
    if extra is not None and len(extra):
        extra_keys = np.unique(extra.user * n_items + extra.item)
        budget = np.bincount(extra.user, minlength=max(users.max(initial=-1) + 1,
                                                       int(extra.user.max()) + 1))[users]
    lists = []
    for start in range(0, len(users), batch_size):
        batch = users[start:start + batch_size]
        depth = min(k + int(budget[start:start + batch_size].max(initial=0)), n_items)
        items, _ = model.recommend(batch, k=depth, exclude_seen=True)
        items = np.asarray(items, dtype=np.int64)
        if len(extra_keys):
            drop = np.isin(batch[:, None] * n_items + items, extra_keys)
            # stable sort moves dropped items to the end, keeping the order of the rest
            order = np.argsort(drop, axis=1, kind="stable")
            items = np.where(np.take_along_axis(drop, order, axis=1), -1,
                             np.take_along_axis(items, order, axis=1))
        lists.append(_pad(items[:, :k], k))
    recommended = np.concatenate(lists) if lists else np.zeros((0, k), dtype=np.int64)
    return users, recommended, relevant


def _concat(a: Pairs, b: Pairs) -> Pairs:
    return Pairs(np.r_[a.user, b.user], np.r_[a.item, b.item], np.r_[a.label, b.label])


def _pad(items: np.ndarray, k: int) -> np.ndarray:
    if items.shape[1] >= k:
        return items
    return np.pad(items, ((0, 0), (0, k - items.shape[1])), constant_values=-1)
