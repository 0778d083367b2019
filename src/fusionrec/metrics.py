"""CTR and top-K ranking metrics over plain arrays (vectorised numpy).

Metrics see labels, scores and item lists, never a model, so the same code scores every model and
can be cross-checked against scikit-learn.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

_EPS = np.finfo(np.float64).eps  # the clip scikit-learn's log_loss uses for float64 input


def sigmoid(logits) -> np.ndarray:
    """Numerically stable logistic function, for models that emit logits."""
    x = np.asarray(logits, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    z = np.exp(x[~pos])  # exp of a negative number never overflows
    out[~pos] = z / (1.0 + z)
    return out


def auc_score(labels, scores) -> float:
    """Area under the ROC curve via the Mann–Whitney rank statistic.

    Tied scores get their average rank, which equals counting each tied (positive, negative)
    pair as one half, exactly as ``sklearn.metrics.roc_auc_score``. NaN when only one class.
    """
    from scipy.stats import rankdata

    y = np.asarray(labels, dtype=np.float64).ravel() > 0.5
    s = np.asarray(scores, dtype=np.float64).ravel()
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)  # average ranks for ties
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _confusion(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    tp = float(np.sum(pred & y))
    fp = float(np.sum(pred & ~y))
    fn = float(np.sum(~pred & y))
    # scikit-learn's zero_division default: an undefined ratio counts as 0
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return {"accuracy": float(np.mean(pred == y)) if y.size else float("nan"),
            "precision": precision, "recall": recall, "f1": f1}


def within_group_auc(labels, scores, groups) -> tuple[float, int]:
    """AUC over the (positive, negative) pairs that share a group, and how many groups have both
    classes.

    Equals the mean of the per-group AUCs weighted by each group's ``n_pos * n_neg`` (its number
    of comparable pairs); groups with one class only add nothing. Ties count one half, as in
    :func:`auc_score`. ``(nan, 0)`` when no group has both classes.
    """
    from scipy.stats import rankdata

    y = np.asarray(labels, dtype=np.float64).ravel() > 0.5
    s = np.asarray(scores, dtype=np.float64).ravel()
    _, g = np.unique(np.asarray(groups).ravel(), return_inverse=True)
    if not (y.shape == s.shape == g.shape):
        raise ValueError(f"labels, scores and groups differ in length: {y.size}, {s.size}, "
                         f"{g.size}")
    # One key orders rows by group, then score, and keeps equal scores tied inside a group, so
    # a single average ranking gives every row its rank within its group plus an offset.
    dense = rankdata(s, method="dense").astype(np.int64)
    ranks = rankdata(g.astype(np.int64) * (s.size + 1) + dense)
    sizes = np.bincount(g)
    ranks -= np.concatenate([[0], np.cumsum(sizes)[:-1]])[g]
    n_pos = np.bincount(g, weights=y).astype(np.int64)
    n_neg = sizes - n_pos
    pos_rank_sum = np.bincount(g, weights=np.where(y, ranks, 0.0))
    u = pos_rank_sum - n_pos * (n_pos + 1) / 2.0  # Mann-Whitney U of each group
    pairs = n_pos * n_neg
    if not pairs.sum():
        return float("nan"), 0
    return float(u.sum() / pairs.sum()), int(np.count_nonzero(pairs))


def item_auc_metrics(labels, probs, items, warm_items) -> dict[str, float]:
    """AUCs that separate preference from item popularity, for CTR rows on ``items``.

    Keys:
      - ``warm_item_auc``: :func:`auc_score` over the rows whose item is in ``warm_items`` (the
        items with a training interaction); ``warm_item_rows`` is their share of the rows.
      - ``within_item_auc``: :func:`within_group_auc` with the item as the group, i.e. each
        item's AUC over its own positive and negative rows, averaged over the items that have
        both, weighted by their ``n_pos * n_neg`` pairs. A score that is a function of the item
        alone (popularity) gets exactly 0.5; ``within_item_items`` counts the items.
    """
    y = np.asarray(labels, dtype=np.float64).ravel()
    p = np.asarray(probs, dtype=np.float64).ravel()
    it = np.asarray(items, dtype=np.int64).ravel()
    warm = np.isin(it, np.asarray(warm_items, dtype=np.int64))
    within, n_items = within_group_auc(y, p, it)
    return {"warm_item_auc": auc_score(y[warm], p[warm]),
            "warm_item_rows": float(np.mean(warm)) if warm.size else float("nan"),
            "within_item_auc": within, "within_item_items": float(n_items)}


def ctr_metrics(labels, probs, threshold: float = 0.5, batch_size: int | None = None,
                drop_last: bool = True, items=None, warm_items=None) -> dict[str, float]:
    """Click-through-rate metrics for 0/1 ``labels`` and predicted probabilities ``probs``.

    Keys:
      - ``auc``: global ROC AUC (tie-aware; NaN if one class only).
      - ``batch_auc`` / ``batch_f1``: mean AUC / F1 over consecutive batches of ``batch_size``
        rows in the given order — what the KGCN/KGNN-LS code reports, which is *not* the
        global AUC. Batches holding one class only are skipped for AUC; with ``drop_last`` (as
        in KGCN) a trailing partial batch is ignored. NaN when ``batch_size`` is None or no
        batch qualifies.
      - ``logloss``: mean binary cross-entropy with probs clipped to ``[eps, 1-eps]``.
      - ``accuracy``, ``precision``, ``recall``, ``f1`` of ``probs >= threshold`` (the
        KGCN rule); an undefined precision/recall/F1 (no predicted or no true positives) is 0.
      - ``n``: number of rows.
      - with ``items`` (each row's item) and ``warm_items`` (the items with a training
        interaction): the keys of :func:`item_auc_metrics` too.
    Pass logits through :func:`sigmoid` first.
    """
    y = np.asarray(labels, dtype=np.float64).ravel()
    p = np.asarray(probs, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels and probs differ in length: {y.size} vs {p.size}")
    if np.any((y != 0) & (y != 1)):
        raise ValueError("labels must be 0 or 1")
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("probs must be finite and within [0, 1]; apply sigmoid() to logits")
    yb = y > 0.5
    pc = np.clip(p, _EPS, 1 - _EPS)
    logloss = float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))) if y.size else float("nan")
    out = {"auc": auc_score(y, p), "logloss": logloss, **_confusion(yb, p >= threshold)}
    out.update(_batch_metrics(y, p, threshold, batch_size, drop_last))
    out["n"] = float(y.size)
    if items is not None and warm_items is not None:
        out.update(item_auc_metrics(y, p, items, warm_items))
    return out


def _batch_metrics(y, p, threshold, batch_size, drop_last) -> dict[str, float]:
    nan = float("nan")
    if batch_size is None:
        return {"batch_auc": nan, "batch_f1": nan}
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    stop = (y.size // batch_size) * batch_size if drop_last else y.size
    aucs, f1s = [], []
    for start in range(0, stop, batch_size):
        yb, pb = y[start:start + batch_size], p[start:start + batch_size]
        f1s.append(_confusion(yb > 0.5, pb >= threshold)["f1"])
        auc = auc_score(yb, pb)
        if not np.isnan(auc):
            aucs.append(auc)
    return {"batch_auc": float(np.mean(aucs)) if aucs else nan,
            "batch_f1": float(np.mean(f1s)) if f1s else nan}


def ranking_metrics(recommended, relevant: Sequence, ks: Sequence[int] = (10, 20),
                    n_items: int | None = None) -> dict[str, float]:
    """Top-K metrics for ranked lists ``recommended`` (``(n_users, L)`` item indices, best
    first, ``-1`` padded) against ``relevant[u]`` (held-out item indices of row ``u``).

    Only rows with at least one relevant item are scored; the means are over those rows and
    ``n_users_evaluated`` counts them. With ``hits@K`` the number of the first ``K``
    recommendations that are relevant and ``R = |relevant|`` (RecBole's definitions):
      - ``recall@K = hits@K / R`` (not ``/ min(R, K)``);
      - ``precision@K = hits@K / K`` (even when fewer than ``K`` items were recommended);
      - ``hr@K = 1`` if ``hits@K > 0``;  ``mrr@K = 1 / rank`` of the first hit (0 if none);
      - ``ndcg@K = DCG / IDCG`` with binary gains, ``DCG = sum 1/log2(rank+1)`` over hits and
        ``IDCG`` the DCG of ``min(R, K)`` hits at the top;
      - ``coverage@K``: distinct items in the evaluated rows' top-``K`` divided by ``n_items``
        (only when ``n_items`` is given).
    ``K`` larger than ``L`` just uses all ``L`` recommendations.
    """
    rec = np.asarray(recommended, dtype=np.int64)
    if rec.ndim != 2:
        raise ValueError(f"recommended must be 2-D (n_users, K), got shape {rec.shape}")
    if len(relevant) != rec.shape[0]:
        raise ValueError(f"recommended has {rec.shape[0]} rows but relevant has {len(relevant)}")
    if any(int(k) < 1 for k in ks):
        raise ValueError(f"every K must be >= 1, got {tuple(ks)}")
    rel = [np.unique(np.asarray(r, dtype=np.int64)) for r in relevant]
    n_rel = np.array([r.size for r in rel], dtype=np.float64)
    rows = np.flatnonzero(n_rel > 0)
    out: dict[str, float] = {"n_users_evaluated": float(rows.size)}
    hits = _hit_matrix(rec[rows], [rel[i] for i in rows])  # (n_eval, L) bool
    n_rel = n_rel[rows]
    mean = (lambda v: float(np.mean(v))) if rows.size else (lambda v: float("nan"))
    for k in ks:
        k = int(k)
        h = hits[:, :k]
        n_hit = h.sum(axis=1)
        width = h.shape[1]
        discount = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))  # ranks 1..k
        dcg = (h * discount[:width]).sum(axis=1)
        idcg = np.cumsum(discount)[np.minimum(n_rel, k).astype(np.int64) - 1]
        first = np.where(h.any(axis=1), h.argmax(axis=1) + 1, 0)
        mrr = np.divide(1.0, first, out=np.zeros(first.shape), where=first > 0)
        out[f"recall@{k}"] = mean(n_hit / n_rel)
        out[f"precision@{k}"] = mean(n_hit / k)
        out[f"hr@{k}"] = mean(n_hit > 0)
        out[f"mrr@{k}"] = mean(mrr)
        out[f"ndcg@{k}"] = mean(dcg / idcg)
        if n_items is not None:
            top = rec[rows, :k]
            out[f"coverage@{k}"] = float(np.unique(top[top >= 0]).size / n_items)
    return out


def _hit_matrix(rec: np.ndarray, rel: list[np.ndarray]) -> np.ndarray:
    """``hit[u, j]``: is ``rec[u, j]`` in ``rel[u]``; one vectorised membership test over
    (row, item) keys instead of a Python loop per user."""
    if rec.size == 0:
        return np.zeros(rec.shape, dtype=bool)
    base = int(max(rec.max(), max((r.max() for r in rel if r.size), default=0))) + 2
    row_of_rel = np.repeat(np.arange(len(rel), dtype=np.int64), [r.size for r in rel])
    rel_keys = row_of_rel * base + np.concatenate(rel)
    rec_keys = np.arange(rec.shape[0], dtype=np.int64)[:, None] * base + rec
    return np.isin(rec_keys, rel_keys) & (rec >= 0)
