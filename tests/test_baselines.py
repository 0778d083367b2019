"""Popularity and BPR-MF on toy data with known answers, plus their shared helpers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fusionrec.data.schema import Dataset, Interactions, Vocabulary
from fusionrec.data.split import Pairs, Split
from fusionrec.evaluation.evaluate import evaluate
from fusionrec.models.baselines.bpr_mf import BPRMF
from fusionrec.models.common.persist import load_model_files
from fusionrec.models.baselines.popularity import Popularity
from fusionrec.models.common.ranking import SeenItems
from training_support import RUNNER


def _split(train: list[tuple[int, int]], n_users: int, n_items: int, task: str = "topk",
           labels=None, test: list[tuple[int, int]] = ()) -> Split:
    """A hand-made split over a tiny dataset."""
    u, i = (np.array([p[k] for p in train], dtype=np.int64) for k in (0, 1))
    y = np.ones(len(u)) if labels is None else np.asarray(labels, dtype=np.float32)
    tu = np.array([p[0] for p in test], dtype=np.int64)
    ti = np.array([p[1] for p in test], dtype=np.int64)
    features = Dataset("toy", Vocabulary(tuple(f"u{x}" for x in range(n_users))),
                       Vocabulary(tuple(f"i{x}" for x in range(n_items))),
                       Interactions(u[y > 0.5], i[y > 0.5]))
    empty = Pairs(np.zeros(0), np.zeros(0), np.zeros(0))
    return Split("toy", task, 0, Pairs(u, i, y), empty, Pairs(tu, ti, np.ones(len(tu))), features)


def test_popularity_counts_and_excludes_seen():
    split = _split([(0, 2), (1, 2), (2, 2), (0, 1), (1, 1), (2, 0)], n_users=4, n_items=4)
    model = Popularity().fit(split)
    np.testing.assert_array_equal(model.counts_, [1, 2, 3, 0])
    np.testing.assert_allclose(model.score(np.array([3, 3]), np.array([2, 3])), [np.log(4), 0.0],
                               rtol=1e-6)
    items, scores = model.recommend(np.array([0, 3]), k=2)
    assert items[0].tolist() == [0, 3]           # items 1 and 2 seen by user 0
    assert items[1].tolist() == [2, 1]           # user 3 saw nothing
    assert np.all(np.diff(scores, axis=1) <= 0)
    unfiltered, _ = model.recommend(np.array([0]), k=2, exclude_seen=False)
    assert unfiltered[0].tolist() == [2, 1]


def test_popularity_counts_positives_only_on_ctr():
    split = _split([(0, 0), (1, 0), (0, 1), (1, 1)], n_users=2, n_items=2, task="ctr",
                   labels=[1, 1, 0, 0])
    assert Popularity().fit(split).counts_.tolist() == [2, 0]


def test_seen_items_mask_matches_a_loop():
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 20, 300), rng.integers(0, 30, 300)
    seen = SeenItems.from_pairs(Pairs(users, items, np.ones(300)), n_users=25)
    batch = np.array([3, 0, 24, 3, 7])
    scores = seen.mask(np.zeros((len(batch), 30)), batch)
    for row, user in enumerate(batch):
        expected = set(items[users == user].tolist())
        assert set(np.flatnonzero(np.isinf(scores[row])).tolist()) == expected


def _two_blocks() -> Split:
    """Users 0-9 like items 0-9, users 10-19 like items 10-19; each user misses one item."""
    train, test = [], []
    for u in range(20):
        block = range(0, 10) if u < 10 else range(10, 20)
        held = block[u % 10]
        test.append((u, held))
        train += [(u, i) for i in block if i != held]
    return _split(train, 20, 20, test=test)


def test_bpr_mf_learns_planted_blocks():
    split = _two_blocks()
    # weight decay keeps a held-out item that was drawn as a negative from sinking
    model = BPRMF(embedding_dim=4, trainer={"epochs": 40, "lr": 0.05, "batch_size": 32,
                                           "weight_decay": 0.1, "patience": 0},
                  runner=RUNNER).fit(split)
    items, _ = model.recommend(np.arange(20), k=1)
    # The only unseen item of the user's own block is the held-out one.
    assert items[:, 0].tolist() == [u for u in range(20)]
    metrics = evaluate(model, split, "test", ks=(1,))
    assert metrics["recall@1"] == 1.0


def test_bpr_negatives_avoid_training_positives():
    split = _two_blocks()
    model = BPRMF(embedding_dim=2, n_negatives=3, runner=RUNNER)
    from fusionrec.config import TrainerConfig

    model.build(split, TrainerConfig())
    users = np.repeat(np.arange(20), 50)
    negatives = model._sampler.draw(users, model.n_negatives, np.random.default_rng(0))
    assert negatives.shape == (1000, 3)
    for user, row in zip(users, negatives):
        assert not set(row.tolist()) & set(model.seen_.items_of(user).tolist())


def test_bpr_mf_bce_on_ctr_gives_logits():
    rng = np.random.default_rng(1)
    users = np.repeat(np.arange(30), 8)
    # Label is 1 exactly when user and item share parity: learnable by MF.
    items = rng.integers(0, 16, len(users))
    labels = ((users % 2) == (items % 2)).astype(np.float32)
    split = _split(list(zip(users, items)), 30, 16, task="ctr", labels=labels)
    model = BPRMF(embedding_dim=4, trainer={"epochs": 40, "lr": 0.05, "batch_size": 64,
                                           "patience": 0}, runner=RUNNER).fit(split)
    assert model.resolved_loss_ == "bce"
    scores = model.score(users, items)
    assert np.mean((scores > 0) == (labels > 0.5)) > 0.95


def test_save_load_files_and_name_check(tmp_path):
    split = _two_blocks()
    model = BPRMF(embedding_dim=3, trainer={"epochs": 2, "patience": 0}, runner=RUNNER).fit(split)
    model.save(tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["name"] == "bpr-mf" and meta["params"]["embedding_dim"] == 3
    with pytest.raises(ValueError, match="not 'popularity'"):
        Popularity.load(tmp_path)
    _, tensors = load_model_files(tmp_path)
    assert tensors["module.user.weight"].shape == (20, 3)


@pytest.mark.parametrize("bad", [{"embedding_dim": 0}, {"loss": "hinge"}, {"n_negatives": 0}])
def test_bpr_mf_rejects_bad_params(bad):
    with pytest.raises(ValueError):
        BPRMF(**bad, runner=RUNNER)


def test_unfitted_models_say_so():
    for model in (Popularity(), BPRMF(runner=RUNNER)):
        with pytest.raises(RuntimeError, match="not fitted"):
            model.recommend(np.array([0]), k=1)
