"""Cold-start baselines: ``random`` (chance level, by the analytic expectation), ``content-map``
(ridge from item text vectors to warm SVD factors: recovers planted factors, picks its
penalty on valid only, refuses cold users) and ``content-knn`` on cold items, all against
random and the popularity refusal on the synthetic world's cold-items split."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fusionrec.data.protocols import make_split
from fusionrec.data.schema import Dataset, Interactions, Vocabulary
from fusionrec.data.split import ColdStart, ColdStartUnsupported, Pairs, Split
from fusionrec.data.synthetic import generate
from fusionrec.evaluation.evaluate import evaluate
from fusionrec.models.baselines.content_map import ContentMap
from fusionrec.models.baselines.random_scores import RandomScores, uniform_scores
from fusionrec.models.baselines.ridge_map import RidgePath, mean_ndcg, svd_factors
from fusionrec.models.registry import model_class

HASHING = {"model": "hashing:64"}


def _pairs(users, items) -> Pairs:
    return Pairs(np.asarray(users), np.asarray(items), np.ones(len(users)))


def _split(train: Pairs, valid: Pairs, test: Pairs, n_users: int, n_items: int,
           cold: ColdStart | None = None) -> Split:
    features = Dataset("toy", Vocabulary(tuple(f"u{u}" for u in range(n_users))),
                       Vocabulary(tuple(f"i{i}" for i in range(n_items))),
                       Interactions(train.user, train.item))
    return Split("toy", "topk", 0, train, valid, test, features, cold=cold)


# ---- random --------------------------------------------------------------------------------

def test_random_scores_are_uniform_and_a_pure_function_of_the_pair():
    users, items = np.repeat(np.arange(200), 100), np.tile(np.arange(100), 200)
    scores = uniform_scores(7, users, items)
    assert np.all((scores > 0) & (scores < 1))
    np.testing.assert_array_equal(scores, uniform_scores(7, users, items))
    assert not np.array_equal(scores, uniform_scores(8, users, items))
    # deciles of 20,000 draws within 4 standard errors of 2,000 each
    counts = np.bincount((scores * 10).astype(int), minlength=10)
    assert np.all(np.abs(counts - 2000) < 4 * np.sqrt(2000 * 0.9))


def test_random_ndcg_matches_the_analytic_expectation():
    # 3,000 users, 51 items: one training item (excluded) and one test item each, so every
    # user ranks 50 items uniformly at random and the test item sits at any rank with
    # probability 1/50: E[NDCG@10] = (1/50) * sum_{r=1..10} 1/log2(r+1).
    rng = np.random.default_rng(0)
    n_users, n_items = 3000, 51
    users = np.arange(n_users)
    train_items = rng.integers(0, n_items, n_users)
    test_items = (train_items + rng.integers(1, n_items, n_users)) % n_items
    split = _split(_pairs(users, train_items), _pairs([], []), _pairs(users, test_items),
                   n_users, n_items)
    metrics = evaluate(RandomScores(seed=3).fit(split), split, "test", ks=(10,))
    discounts = 1 / np.log2(np.arange(2, 12))
    expected = discounts.sum() / 50
    spread = np.sqrt((discounts ** 2).sum() / 50 - expected ** 2) / np.sqrt(n_users)
    assert metrics["ndcg@10"] == pytest.approx(expected, abs=4 * spread)
    assert metrics["hr@10"] == pytest.approx(10 / 50, abs=4 * np.sqrt(0.2 * 0.8 / n_users))


# ---- content-map: the linear algebra --------------------------------------------------------

def test_ridge_path_recovers_a_planted_linear_map_of_svd_factors():
    # scores = P Qᵀ with item factors Q = X W exactly linear in the item vectors X: the SVD's
    # item factors are then linear in X too, and the mapped factors of unseen items reproduce
    # their true scores for every user
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 6))
    w, p = rng.normal(size=(6, 3)), rng.normal(size=(40, 3))
    warm, cold = slice(0, 60), slice(60, 80)
    users, items = svd_factors(p @ (x[warm] @ w).T, dim=3)
    np.testing.assert_allclose(users @ items.T, p @ (x[warm] @ w).T, atol=1e-4)
    mapped = RidgePath.fit(x[warm], items).predict(x[cold], penalty=1e-9)
    np.testing.assert_allclose(users @ mapped.T, p @ (x[cold] @ w).T, atol=1e-3)
    # a large penalty shrinks every prediction to the warm items' mean factors
    shrunk = RidgePath.fit(x[warm], items).predict(x[cold], penalty=1e9)
    np.testing.assert_allclose(shrunk, np.broadcast_to(items.mean(axis=0), shrunk.shape),
                               atol=1e-4)


def test_mean_ndcg_by_hand():
    scores = np.array([[3.0, 2.0, 1.0], [1.0, -np.inf, 2.0]])
    relevant = np.array([[0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    # row 0: relevant at rank 2 -> 1/log2(3); row 1: ranks [2, 0, 1(excluded)]: item 0 at rank
    # 2, item 1 excluded -> (1/log2(3)) / (1 + 1/log2(3))
    expected = (1 / np.log2(3) + (1 / np.log2(3)) / (1 + 1 / np.log2(3))) / 2
    assert mean_ndcg(scores, relevant, k=3) == pytest.approx(expected)


def test_content_map_maps_a_cold_item_onto_its_topic_by_hand():
    # items 0-4 (topic A) are liked by users 0-9, items 5-9 (topic B) by users 10-19; text
    # vectors say only the topic. The warm matrix is two all-ones 10x5 blocks, so a user's
    # score for a warm item of their topic is 1 and 0 otherwise. Cold item 10 has topic A's
    # vector, cold item 11 topic B's: exact ridge (λ ≈ 0) gives them their topic's factors.
    users = np.repeat(np.arange(20), 5)
    items = np.where(users < 10, np.tile(np.arange(5), 20), np.tile(np.arange(5, 10), 20))
    topic = np.array([0] * 5 + [1] * 5 + [0, 1])
    vectors = np.eye(2)[topic]                                      # (12, 2)
    cold = ColdStart("items", [10, 11], np.array([10, 11]), np.array([10, 11]))
    split = _split(_pairs(users, items), _pairs([0, 10], [10, 11]), _pairs([1, 11], [10, 11]),
                   20, 12, cold)
    model = ContentMap(embedding_dim=2, lambdas=(1e-9,)).set_item_vectors(vectors).fit(split)
    scores = model.score_all(np.arange(20))                         # (20, 12)
    np.testing.assert_allclose(scores[:10, [0, 10]], 1.0, atol=1e-4)
    np.testing.assert_allclose(scores[:10, [5, 11]], 0.0, atol=1e-4)
    np.testing.assert_allclose(scores[10:, [5, 11]], 1.0, atol=1e-4)
    np.testing.assert_allclose(scores[10:, [0, 10]], 0.0, atol=1e-4)
    assert model.valid_ndcg_ == [1.0]


# ---- content-map on the synthetic world ------------------------------------------------------

@pytest.fixture(scope="module")
def world():
    return generate(n_users=300, n_items=200, n_interactions=6000, seed=5)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FUSIONREC_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _content_map(split) -> ContentMap:
    return ContentMap(encoder=HASHING, embedding_dim=16).fit(split)


def test_penalty_is_chosen_on_valid_only(world):
    split = make_split(world, "cold-items", seed=0)
    model = _content_map(split)
    assert model.penalty_ == model.lambdas[int(np.argmax(model.valid_ndcg_))]
    # different test labels: every test pair moved to another test candidate
    candidates = split.cold.test_candidates
    moved = candidates[(np.searchsorted(candidates, split.test.item) + 1) % len(candidates)]
    changed = dataclasses.replace(split, test=Pairs(split.test.user, moved, split.test.label))
    again = _content_map(changed)
    assert again.penalty_ == model.penalty_ and again.valid_ndcg_ == model.valid_ndcg_
    assert evaluate(again, changed, "test") != evaluate(model, split, "test")
    # while the valid part does decide: another valid part gives other valid scores
    swapped = dataclasses.replace(split, valid=split.test, test=split.valid,
                                  cold=ColdStart("items", split.cold.entities,
                                                 split.cold.test_candidates,
                                                 split.cold.valid_candidates))
    assert _content_map(swapped).valid_ndcg_ != model.valid_ndcg_


def test_content_models_beat_random_and_popularity_refuses_on_cold_items(world):
    found = {}
    for seed in (0, 1, 2):
        split = make_split(world, "cold-items", seed=seed)
        assert not np.isin(split.cold.test_candidates, split.train.item).any()
        fitted = {"random": RandomScores(seed=seed).fit(split),
                  "content-knn": model_class("content-knn")(encoder=HASHING).fit(split),
                  "content-map": _content_map(split)}
        for name, model in fitted.items():
            found.setdefault(name, []).append(evaluate(model, split, "test", ks=(10,))["ndcg@10"])
        with pytest.raises(ColdStartUnsupported, match="popularity cannot score cold items"):
            evaluate(model_class("popularity")().fit(split), split, "test")
        # the report's sources column: what it reads, not what the dataset has
        assert fitted["content-map"].sources_ == ("interactions", "item_attributes",
                                                  "item_text", "kg", "reviews")
    mean = {name: float(np.mean(values)) for name, values in found.items()}
    # the synthetic item text names each item's topic: both content models clear chance
    # clearly, and mapping into the collaborative space beats the raw text cosine
    assert mean["content-map"] > mean["content-knn"] > mean["random"] + 0.05
    assert mean["content-map"] > mean["random"] + 0.15


def test_content_map_refuses_cold_users_and_ranks_those_with_shots(world):
    split = make_split(world, "cold-users", seed=0)
    with pytest.raises(ColdStartUnsupported, match="content-map cannot score cold users"):
        _content_map(split)
    shots = make_split(world, "cold-users", seed=0, user_shots=2)
    metrics = evaluate(_content_map(shots), shots, "test", ks=(10,))
    assert 0 < metrics["ndcg@10"] <= 1


def test_content_map_is_top_k_only(world):
    with pytest.raises(ValueError, match="content-map ranks items"):
        _content_map(make_split(world, "ctr-kgcn", seed=0))
