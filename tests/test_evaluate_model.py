"""evaluate(model, split, part): CTR via sigmoid(score), top-K via full ranking with training
(and, on test, validation) items excluded, batched over users."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fusionrec.data.schema import Dataset, Interactions, Vocabulary
from fusionrec.data.split import Pairs, Split
from fusionrec.evaluation.evaluate import evaluate
from fusionrec.models.base import RecommenderBase
from fusionrec.models.common.ranking import SeenItems, recommend_by_scores


def _pairs(rows, label=1.0) -> Pairs:
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, 2)
    return Pairs(rows[:, 0], rows[:, 1], np.full(len(rows), label))


def _split(train, valid, test, n_users=3, n_items=6, task="topk") -> Split:
    features = Dataset("toy", Vocabulary(tuple(map(str, range(n_users)))),
                       Vocabulary(tuple(f"i{i}" for i in range(n_items))),
                       Interactions(train.user, train.item))
    return Split("toy", task, 0, train, valid, test, features)


class _FixedScores(RecommenderBase):
    """A model whose scores are a fixed matrix: every user prefers higher item indices."""

    def __init__(self, matrix, seen):
        self.matrix, self.seen_ = np.asarray(matrix, dtype=np.float32), seen
        self.calls = []

    def score(self, users, items):
        return self.matrix[users, items]

    def recommend(self, users, k=10, exclude_seen=True):
        self.calls.append(len(users))
        return recommend_by_scores(lambda u: self.matrix[u], users, k, self.seen_, exclude_seen)


def test_topk_excludes_train_and_valid_items_on_test():
    train, valid, test = _pairs([[0, 5], [1, 0]]), _pairs([[0, 4]]), _pairs([[0, 3], [1, 5]])
    split = _split(train, valid, test)
    model = _FixedScores(np.tile(np.arange(6.0), (3, 1)), SeenItems.from_pairs(train, 3))
    metrics = evaluate(model, split, "test", ks=(1, 2))
    # user 0: item 5 (train) and 4 (valid) are skipped, so item 3 ranks first.
    # user 1: item 5 ranks first. Both hit at rank 1; user 2 has no test item.
    assert metrics["n_users_evaluated"] == 2
    assert metrics["recall@1"] == 1.0 and metrics["ndcg@2"] == 1.0
    kept = evaluate(model, split, "test", ks=(1,), exclude_valid_from_test=False)
    assert kept["recall@1"] == 0.5  # now user 0 is shown item 4 first
    on_valid = evaluate(model, split, "valid", ks=(1,))
    assert on_valid["recall@1"] == 1.0  # valid: only train items excluded


def test_topk_is_batched_over_users():
    rng = np.random.default_rng(0)
    n_users, n_items = 50, 30
    train = _pairs(np.c_[rng.integers(0, n_users, 200), rng.integers(0, n_items, 200)])
    test = _pairs(np.c_[np.arange(n_users), rng.integers(0, n_items, n_users)])
    empty = _pairs(np.zeros((0, 2)))
    split = _split(train, empty, test, n_users, n_items)
    matrix = rng.normal(size=(n_users, n_items))
    seen = SeenItems.from_pairs(train, n_users)
    whole = evaluate(_FixedScores(matrix, seen), split, "test", batch_size=1000)
    batched_model = _FixedScores(matrix, seen)
    batched = evaluate(batched_model, split, "test", batch_size=7)
    assert whole == batched
    assert max(batched_model.calls) <= 7


def test_ctr_metrics_on_sigmoid_of_scores():
    rng = np.random.default_rng(1)
    users, items = rng.integers(0, 4, 80), rng.integers(0, 10, 80)
    labels = rng.integers(0, 2, 80).astype(float)
    matrix = rng.normal(size=(4, 10)) * 20  # large logits must not saturate into ties
    test = Pairs(users, items, labels)
    split = _split(test, test, test, 4, 10, task="ctr")
    model = _FixedScores(matrix, None)
    metrics = evaluate(model, split, "test", threshold=0.5)
    assert metrics["auc"] == pytest.approx(roc_auc_score(labels, matrix[users, items]))
    predicted = matrix[users, items] >= 0  # sigmoid(s) >= 0.5  <=>  s >= 0
    assert metrics["accuracy"] == pytest.approx(np.mean(predicted == (labels > 0.5)))
    # per-batch mean AUC over consecutive rows (KGCN's way), the trailing partial batch dropped
    scores = matrix[users, items]
    expected = [roc_auc_score(labels[s:s + 32], scores[s:s + 32]) for s in (0, 32)]
    batched = evaluate(model, split, "test", ctr_batch_size=32)
    assert batched["batch_auc"] == pytest.approx(np.mean(expected))
    assert np.isnan(evaluate(model, split, "test", ctr_batch_size=None)["batch_auc"])


def test_ctr_rejects_non_finite_scores():
    test = _pairs([[0, 1], [1, 2]])
    split = _split(test, test, test, task="ctr")
    model = _FixedScores(np.full((3, 6), np.nan), None)
    with pytest.raises(ValueError, match="non-finite"):
        evaluate(model, split, "test")
