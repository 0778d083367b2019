"""ItemKNN, LightGCN, KGCN and content-kNN on toy data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.data.protocols import make_split
from fusionrec.data.schema import (Dataset, Interactions, ItemText, KnowledgeGraph, Social,
                                   Vocabulary)
from fusionrec.data.split import Pairs, Split
from fusionrec.data.synthetic import generate
from fusionrec.evaluation.evaluate import evaluate
from fusionrec.models.baselines.content_knn import ContentKNN
from fusionrec.models.baselines.item_knn import ItemKNN, platt_scaling
from fusionrec.models.baselines.kg_baseline import KGCN
from fusionrec.models.baselines.lightgcn import LightGCN
from fusionrec.models.baselines.popularity import Popularity
from training_support import RUNNER

EMPTY = Pairs(np.zeros(0), np.zeros(0), np.zeros(0))


def _dataset(users, items, n_users, n_items, **sources) -> Dataset:
    return Dataset("toy", Vocabulary(tuple(f"u{x}" for x in range(n_users))),
                   Vocabulary(tuple(f"i{x}" for x in range(n_items))),
                   Interactions(np.asarray(users), np.asarray(items)), **sources)


def _topk_split(train, n_users, n_items, test=(), **sources) -> Split:
    u = np.array([p[0] for p in train], dtype=np.int64)
    i = np.array([p[1] for p in train], dtype=np.int64)
    tu = np.array([p[0] for p in test], dtype=np.int64)
    ti = np.array([p[1] for p in test], dtype=np.int64)
    features = _dataset(u, i, n_users, n_items, **sources)
    return Split("toy", "topk", 0, Pairs(u, i, np.ones(len(u))), EMPTY,
                 Pairs(tu, ti, np.ones(len(tu))), features)


# -- ItemKNN -------------------------------------------------------------------------------------
def test_item_knn_matches_sklearn_cosine_and_recovers_co_occurrence():
    from sklearn.metrics.pairwise import cosine_similarity

    rng = np.random.default_rng(0)
    dense = (rng.random((30, 12)) < 0.3).astype(np.float32)
    dense[:, 5] = dense[:, 3]  # item 5 is bought exactly by item 3's buyers
    users, items = np.nonzero(dense)
    split = _topk_split(list(zip(users, items)), 31, 12)
    model = ItemKNN(k=0).fit(split)
    expected = cosine_similarity(dense.T)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(model.similarity_.toarray(), expected, rtol=1e-5, atol=1e-6)
    # score(u, i) = sum of i's similarities to the user's items
    np.testing.assert_allclose(model.score(np.arange(30), np.full(30, 7)),
                               dense @ expected[7], rtol=1e-5, atol=1e-6)
    # a user who only has item 3 is recommended its perfect co-occurrence partner first
    single = _topk_split(list(zip(users, items)) + [(30, 3)], 31, 12)
    assert ItemKNN(k=0).fit(single).recommend(np.array([30]), k=1)[0][0, 0] == 5


def test_item_knn_keeps_k_neighbours_and_shrink_damps_rare_pairs():
    rng = np.random.default_rng(1)
    users, items = rng.integers(0, 40, 400), rng.integers(0, 25, 400)
    split = _topk_split(list(zip(users, items)), 40, 25)
    full = ItemKNN(k=0).fit(split).similarity_.toarray()
    pruned = ItemKNN(k=3).fit(split).similarity_.toarray()
    assert ((pruned > 0).sum(axis=1) <= 3).all()
    for row in range(25):  # the kept entries are the row's three largest
        kept = np.flatnonzero(pruned[row])
        assert np.all(full[row, kept] >= np.sort(full[row])[-3] - 1e-7)
    shrunk = ItemKNN(k=0, shrink=5.0).fit(split).similarity_.toarray()
    assert np.all(shrunk <= full + 1e-7) and (shrunk[full > 0] < full[full > 0]).all()


def test_platt_scaling_recovers_a_known_logistic_model():
    rng = np.random.default_rng(2)
    x = rng.normal(size=20000)
    y = (rng.random(20000) < 1 / (1 + np.exp(-(2.0 * x - 0.5)))).astype(np.float32)
    a, b = platt_scaling(x, y)
    assert a == pytest.approx(2.0, abs=0.1) and b == pytest.approx(-0.5, abs=0.1)
    assert platt_scaling(x, np.ones_like(y)) == (1.0, 0.0)   # one class: identity
    assert platt_scaling(-x, y) == (1.0, 0.0)                # would invert the ranking


def test_item_knn_on_ctr_calibrates_without_changing_auc():
    split = make_split(generate(n_users=120, n_items=80, n_interactions=2000, seed=3), "ctr-kgcn")
    calibrated = ItemKNN().fit(split)
    raw = ItemKNN(calibrate=False).fit(split)
    assert calibrated.logit_ != (1.0, 0.0) and raw.logit_ == (1.0, 0.0)
    m_cal, m_raw = evaluate(calibrated, split, "test"), evaluate(raw, split, "test")
    assert m_cal["auc"] == pytest.approx(m_raw["auc"], abs=1e-9)
    assert m_cal["auc"] > 0.55
    assert m_cal["logloss"] < m_raw["logloss"]
    # at the likelihood optimum (with an intercept) mean probability equals the positive rate
    valid = split.valid
    probs = 1 / (1 + np.exp(-calibrated.score(valid.user, valid.item)))
    assert probs.mean() == pytest.approx(valid.label.mean(), abs=1e-3)


# -- LightGCN ------------------------------------------------------------------------------------
def test_lightgcn_beats_popularity_on_planted_tastes():
    split = make_split(generate(n_users=150, n_items=100, n_interactions=3000, seed=4),
                       "topk-random")
    model = LightGCN(embedding_dim=16, layers=2,
                     trainer={"epochs": 10, "batch_size": 256, "lr": 0.02, "patience": 5,
                              "num_threads": 1}, runner=RUNNER).fit(split)
    ours, pop = evaluate(model, split, "test"), evaluate(Popularity().fit(split), split, "test")
    assert ours["ndcg@10"] > pop["ndcg@10"] + 0.05  # about 0.28 against 0.15


def _friends_split(social: bool) -> Split:
    """Users 0-9 like items 0-9, users 10-19 items 10-19; user 20 has no items but five
    friends in the first group."""
    train = [(u, i) for u in range(20) for i in (range(10) if u < 10 else range(10, 20))
             if (u + i) % 10 != 0]  # each user misses one item of the block
    friends = Social(np.full(5, 20), np.arange(5))
    return _topk_split(train, 21, 20, social=friends if social else None)


def test_lightgcn_social_propagates_friends_tastes_to_a_cold_user():
    split = _friends_split(social=True)
    kwargs = dict(embedding_dim=8, layers=2,
                  trainer={"epochs": 40, "batch_size": 64, "lr": 0.05, "patience": 0,
                           "num_threads": 1})
    with_friends = LightGCN(social=True, **kwargs, runner=RUNNER).fit(split)
    items, _ = with_friends.recommend(np.array([20]), k=5)
    assert (items[0] < 10).all()  # the friends' block
    scores = with_friends.score(np.full(20, 20), np.arange(20))
    assert scores[:10].mean() > scores[10:].mean()
    with pytest.raises(ValueError, match="social"):
        LightGCN(social=True, **kwargs, runner=RUNNER).fit(_friends_split(social=False))


def test_lightgcn_reports_the_sources_it_read():
    # benchmark reports label rows with used_sources(); without it a LightGCN row on a dataset
    # with texts and reviews read "interactions, item_text, reviews" (amazon-ecommerce)
    assert LightGCN().used_sources() == ("interactions",)
    assert LightGCN(social=True).used_sources() == ("interactions", "social")


# -- KGCN ----------------------------------------------------------------------------------------
def _kg(n_items: int, tails: np.ndarray, n_entities: int) -> KnowledgeGraph:
    """Item ``i`` is entity ``i``; one triple ``item -rel0-> tails[i]``."""
    return KnowledgeGraph(np.arange(n_items), np.zeros(n_items, dtype=np.int64), tails,
                          Vocabulary(tuple(f"e{x}" for x in range(n_entities))),
                          Vocabulary(("genre",)), np.arange(n_items), np.arange(n_items))


def _kg_ctr_split(tails: np.ndarray) -> Split:
    """Users 0-19 like even items and dislike odd ones; the KG puts even items under entity 40
    and odd under 41 (per ``tails``). Items 30-39 never appear in training."""
    rng = np.random.default_rng(5)
    users = np.repeat(np.arange(20), 12)
    items = rng.integers(0, 30, len(users))
    labels = (items % 2 == 0).astype(np.float32)
    features = _dataset(users[labels > 0], items[labels > 0], 20, 40, kg=_kg(40, tails, 42))
    tu, ti = np.repeat(np.arange(20), 10), np.tile(np.arange(30, 40), 20)
    test = Pairs(tu, ti, (ti % 2 == 0).astype(np.float32))
    return Split("toy", "ctr", 0, Pairs(users, items, labels), test, test, features)


def test_kgcn_reads_the_kg_for_unseen_items():
    genre = np.where(np.arange(40) % 2 == 0, 40, 41)
    kwargs = dict(embedding_dim=8, neighbours=2,
                  trainer={"epochs": 40, "batch_size": 64, "lr": 0.03, "patience": 0,
                           "num_threads": 1})
    split = _kg_ctr_split(genre)
    model = KGCN(**kwargs, runner=RUNNER).fit(split)
    # items 30-39 have no interactions: only their KG genre tells liked from disliked
    assert evaluate(model, split, "test")["auc"] > 0.9
    shuffled = KGCN(**kwargs, runner=RUNNER).fit(
        _kg_ctr_split(np.random.default_rng(0).permutation(genre)))
    assert not np.allclose(model.score(split.test.user, split.test.item),
                           shuffled.score(split.test.user, split.test.item))


def test_kgcn_needs_a_kg_and_valid_params():
    split = _topk_split([(0, 0), (1, 1)], 2, 2)
    with pytest.raises(ValueError, match="knowledge graph"):
        KGCN(trainer={"epochs": 1}, runner=RUNNER).fit(split)
    with pytest.raises(ValueError):
        KGCN(neighbours=0, runner=RUNNER)


# -- content kNN -----------------------------------------------------------------------------
def test_content_knn_ranks_items_with_similar_text(tmp_path):
    titles = tuple(["saxophone jazz swing bebop trumpet"] * 5 + ["guitar rock riff amplifier"] * 5)
    train = [(0, 0), (0, 1), (1, 5), (1, 6)]
    split = _topk_split(train, 2, 10, item_text=ItemText({"title": titles}))
    model = ContentKNN(encoder={"model": "hashing:64", "cache_dir": str(tmp_path)}).fit(split)
    items, _ = model.recommend(np.array([0, 1]), k=3)
    assert set(items[0]) <= {2, 3, 4} and set(items[1]) <= {7, 8, 9}
    np.testing.assert_allclose(model.score(np.array([0]), np.array([2])), [1.0], atol=1e-5)
    # the item vectors are text_features' item vectors, without encoding users
    from fusionrec.encoders.config import EncoderConfig
    from fusionrec.encoders.features import text_features
    from fusionrec.models.baselines.content_knn import item_text_vectors

    config = EncoderConfig(model="hashing:64", cache_dir=str(tmp_path / "other"))
    np.testing.assert_array_equal(item_text_vectors(split.features, config),
                                  text_features(split.features, config, progress=False).item)
    # precomputed vectors skip the encoder: user 0's profile is the mean of items 0 and 1
    vectors = np.eye(10, dtype=np.float32)
    plain = ContentKNN().set_item_vectors(vectors).fit(split)
    np.testing.assert_allclose(plain.score(np.zeros(3, int), np.array([0, 1, 2])),
                               [2 ** -0.5, 2 ** -0.5, 0.0], atol=1e-6)


@pytest.mark.parametrize("cls, bad", [(ItemKNN, {"k": -1}), (ItemKNN, {"shrink": -1}),
                                      (LightGCN, {"layers": -1}), (LightGCN, {"loss": "mse"}),
                                      (ContentKNN, {"encoder": 3})])
def test_bad_params_are_rejected(cls, bad):
    with pytest.raises(ValueError):
        cls(**bad)
