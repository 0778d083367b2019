"""CTR and ranking metrics: hand-computed cases plus scikit-learn / naive-loop oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from fusionrec.metrics import (auc_score, ctr_metrics, item_auc_metrics, ranking_metrics, sigmoid,
                               within_group_auc)

# ---------------------------------------------------------------- CTR


@st.composite
def labelled_scores(draw, min_size=2, max_size=200):
    n = draw(st.integers(min_size, max_size))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    labels[0], labels[1] = 0, 1  # both classes present
    # coarse grids create many ties, the hard case for AUC
    levels = draw(st.sampled_from([3, 10, 1000]))
    probs = (rng.integers(0, levels, n) + 0.5) / levels
    return labels, probs


@settings(max_examples=80, deadline=None)
@given(labelled_scores())
def test_ctr_metrics_agree_with_sklearn(data):
    labels, probs = data
    got = ctr_metrics(labels, probs, threshold=0.5)
    pred = (probs >= 0.5).astype(int)
    assert got["auc"] == pytest.approx(skm.roc_auc_score(labels, probs), abs=1e-9)
    assert got["logloss"] == pytest.approx(skm.log_loss(labels, probs), abs=1e-9)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(labels, pred), abs=1e-9)
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score),
                     ("f1", skm.f1_score)):
        assert got[name] == pytest.approx(fn(labels, pred, zero_division=0), abs=1e-9), name


@settings(max_examples=50, deadline=None)
@given(labelled_scores(min_size=10), st.integers(1, 40))
def test_batch_auc_is_mean_of_full_batches_with_both_classes(data, batch_size):
    labels, probs = data
    got = ctr_metrics(labels, probs, batch_size=batch_size)
    expected = []
    for start in range(0, len(labels) - batch_size + 1, batch_size):
        y, p = labels[start:start + batch_size], probs[start:start + batch_size]
        if 0 < y.sum() < len(y):
            expected.append(skm.roc_auc_score(y, p))
    if expected:
        assert got["batch_auc"] == pytest.approx(np.mean(expected), abs=1e-9)
    else:
        assert math.isnan(got["batch_auc"])


def test_auc_hand_cases_with_ties():
    # positives at 0.8 and 0.5, negatives at 0.5 and 0.2: pairs (0.8>0.5, 0.8>0.2, tie, 0.5>0.2)
    assert auc_score([1, 1, 0, 0], [0.8, 0.5, 0.5, 0.2]) == pytest.approx(3.5 / 4)
    assert auc_score([1, 0], [0.3, 0.3]) == 0.5
    assert auc_score([0, 1], [0.9, 0.1]) == 0.0


def test_all_same_labels_give_nan_auc_but_defined_rest():
    got = ctr_metrics([1, 1, 1], [0.9, 0.2, 0.6])
    assert math.isnan(got["auc"])
    assert got["accuracy"] == pytest.approx(2 / 3)
    assert got["precision"] == 1.0 and got["recall"] == pytest.approx(2 / 3)
    none_predicted = ctr_metrics([0, 1], [0.1, 0.2])
    assert none_predicted["precision"] == 0.0 and none_predicted["f1"] == 0.0


def test_batch_auc_drops_partial_and_single_class_batches():
    labels = [1, 0, 1, 1, 0, 1, 0]
    probs = [0.9, 0.1, 0.2, 0.8, 0.7, 0.4, 0.3]
    # batches of 2: [1,0] auc 1; [1,1] skipped; [0,1] auc 0; trailing [0] dropped
    got = ctr_metrics(labels, probs, batch_size=2)
    assert got["batch_auc"] == pytest.approx(0.5)
    assert math.isnan(ctr_metrics(labels, probs)["batch_auc"])


def test_logloss_clips_certain_mistakes():
    got = ctr_metrics([1, 0], [0.0, 1.0])
    assert np.isfinite(got["logloss"]) and got["logloss"] > 30


def test_sigmoid_is_stable_and_matches_definition():
    x = np.array([-1000.0, -3.0, 0.0, 2.5, 1000.0])
    y = sigmoid(x)
    assert np.all(np.isfinite(y))
    assert y[2] == 0.5 and y[0] == 0.0 and y[-1] == 1.0
    assert y[1] == pytest.approx(1 / (1 + math.exp(3.0)))
    assert ctr_metrics([0, 1], sigmoid([-2.0, 2.0]))["auc"] == 1.0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="sigmoid"):
        ctr_metrics([0, 1], [-1.0, 3.0])
    with pytest.raises(ValueError, match="length"):
        ctr_metrics([0, 1], [0.5])
    with pytest.raises(ValueError, match="0 or 1"):
        ctr_metrics([0, 2], [0.5, 0.5])


@settings(max_examples=80, deadline=None)
@given(labelled_scores(), st.integers(1, 12))
def test_item_aucs_agree_with_sklearn_per_item(data, n_items):
    labels, probs = data
    rng = np.random.default_rng(len(labels) * 31 + n_items)
    items = rng.integers(0, n_items, len(labels))
    warm = np.flatnonzero(rng.random(n_items) < 0.6)
    got = ctr_metrics(labels, probs, items=items, warm_items=warm)
    # oracle: scikit-learn's AUC per item, weighted by the item's positive x negative pairs
    total = weight = 0.0
    counted = 0
    for item in np.unique(items):
        y, p = labels[items == item], probs[items == item]
        if 0 < y.sum() < len(y):
            pairs = y.sum() * (len(y) - y.sum())
            total += skm.roc_auc_score(y, p) * pairs
            weight += pairs
            counted += 1
    if counted:
        assert got["within_item_auc"] == pytest.approx(total / weight, abs=1e-9)
    else:
        assert math.isnan(got["within_item_auc"])
    assert got["within_item_items"] == counted
    on_warm = np.isin(items, warm)
    assert got["warm_item_rows"] == pytest.approx(on_warm.mean())
    y = labels[on_warm]
    if 0 < y.sum() < len(y):
        assert got["warm_item_auc"] == pytest.approx(skm.roc_auc_score(y, probs[on_warm]),
                                                     abs=1e-9)
    else:
        assert math.isnan(got["warm_item_auc"])


def test_within_item_auc_hand_case_and_popularity_scores_half():
    # item 0: pos 0.9, 0.4 vs neg 0.4 -> (1 + 0.5) / 2 pairs; item 1: pos 0.2 vs negs 0.3, 0.1
    # -> 1 / 2 pairs; item 2: positives only, not counted. Weighted: (1.5 + 1) / 4.
    labels = [1, 1, 0, 1, 0, 0, 1]
    probs = [0.9, 0.4, 0.4, 0.2, 0.3, 0.1, 0.7]
    items = [0, 0, 0, 1, 1, 1, 2]
    assert within_group_auc(labels, probs, items) == (pytest.approx(2.5 / 4), 2)
    # a score that depends on the item alone (popularity) ranks every same-item pair as a tie
    popular = np.array([0.9, 0.5, 0.1])[items]
    got = item_auc_metrics(labels, popular, items, warm_items=[0, 1])
    assert got["within_item_auc"] == 0.5
    assert got["warm_item_auc"] == pytest.approx(auc_score(labels[:6], popular[:6]))
    assert got["warm_item_rows"] == pytest.approx(6 / 7)
    assert math.isnan(within_group_auc([1, 0], [0.3, 0.2], [0, 1])[0])
    assert "within_item_auc" not in ctr_metrics(labels, probs)  # only with items given


# ---------------------------------------------------------------- ranking


def _naive(rec_row, rel, k):
    rel = set(int(i) for i in rel)
    top = [int(i) for i in rec_row[:k]]
    hits = [1 if (i in rel and i >= 0) else 0 for i in top]
    dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
    idcg = sum(1 / math.log2(r + 2) for r in range(min(len(rel), k)))
    first = next((r + 1 for r, h in enumerate(hits) if h), None)
    return {"recall": sum(hits) / len(rel), "precision": sum(hits) / k, "hr": float(any(hits)),
            "mrr": 1 / first if first else 0.0, "ndcg": dcg / idcg}


@st.composite
def rankings(draw):
    n_items = draw(st.integers(2, 30))
    n_users = draw(st.integers(1, 12))
    width = draw(st.integers(1, n_items))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    rec = np.stack([rng.permutation(n_items)[:width] for _ in range(n_users)])
    relevant = [rng.choice(n_items, rng.integers(0, n_items + 1), replace=False)
                for _ in range(n_users)]
    return rec, relevant, n_items


@settings(max_examples=150, deadline=None)
@given(rankings(), st.lists(st.integers(1, 35), min_size=1, max_size=3, unique=True))
def test_ranking_metrics_match_naive_loops(data, ks):
    rec, relevant, n_items = data
    got = ranking_metrics(rec, relevant, ks=ks, n_items=n_items)
    scored = [u for u, r in enumerate(relevant) if len(r)]
    assert got["n_users_evaluated"] == len(scored)
    for k in ks:
        for name in ("recall", "precision", "hr", "mrr", "ndcg"):
            key = f"{name}@{k}"
            if not scored:
                assert math.isnan(got[key])
                continue
            expected = np.mean([_naive(rec[u], relevant[u], k)[name] for u in scored])
            assert got[key] == pytest.approx(expected, abs=1e-9), key
        if scored:
            distinct = {int(i) for u in scored for i in rec[u, :k]}
            assert got[f"coverage@{k}"] == pytest.approx(len(distinct) / n_items)


@settings(max_examples=100, deadline=None)
@given(rankings(), st.integers(1, 30))
def test_ndcg_matches_sklearn_on_full_rankings(data, k):
    rec, relevant, n_items = data
    scored = [u for u, r in enumerate(relevant) if len(r)]
    if not scored:
        return
    y_true = np.zeros((len(scored), n_items))
    y_score = np.zeros((len(scored), n_items))
    for row, u in enumerate(scored):
        y_true[row, relevant[u]] = 1
        # strictly decreasing scores down the list; unlisted items all score 0 below them
        y_score[row, rec[u]] = np.arange(rec.shape[1], 0, -1)
    k_eff = min(k, rec.shape[1])  # beyond the list sklearn would rank the tied zeros
    got = ranking_metrics(rec, relevant, ks=(k_eff,))[f"ndcg@{k_eff}"]
    assert got == pytest.approx(skm.ndcg_score(y_true, y_score, k=k_eff), abs=1e-9)


def test_ranking_hand_case_with_empty_user_and_short_list():
    recommended = np.array([[3, 1, -1], [0, 2, 4], [5, -1, -1]])
    relevant = [np.array([1, 7]), np.array([], dtype=int), np.array([9])]
    got = ranking_metrics(recommended, relevant, ks=(2, 5), n_items=10)
    assert got["n_users_evaluated"] == 2
    # user 0: hit at rank 2 of 2 relevant; user 2: no hit
    assert got["recall@2"] == pytest.approx((1 / 2 + 0) / 2)
    assert got["precision@5"] == pytest.approx((1 / 5 + 0) / 2)
    assert got["hr@5"] == pytest.approx(0.5)
    assert got["mrr@2"] == pytest.approx((1 / 2) / 2)
    ndcg_u0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert got["ndcg@5"] == pytest.approx(ndcg_u0 / 2)
    assert got["coverage@2"] == pytest.approx(3 / 10)  # items 3, 1, 5 (padding ignored)


def test_ranking_no_evaluable_users_and_bad_shapes():
    got = ranking_metrics(np.zeros((2, 3), dtype=int), [[], []], ks=(3,))
    assert got["n_users_evaluated"] == 0 and math.isnan(got["ndcg@3"])
    with pytest.raises(ValueError, match="rows"):
        ranking_metrics(np.zeros((2, 3), dtype=int), [[1]])
    with pytest.raises(ValueError, match="2-D"):
        ranking_metrics(np.zeros(3, dtype=int), [[1]])
