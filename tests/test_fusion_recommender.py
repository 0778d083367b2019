"""FusionRecommender on a tiny synthetic world: encoders, source selection, learning, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusionrec.data.protocols import make_split
from fusionrec.data.schema import KnowledgeGraph, Social
from fusionrec.data.synthetic import generate
from fusionrec.encoders.features import TextFeatures
from fusionrec.metrics import auc_score
from fusionrec.models.fusion.build import build_encoders, resolve_sources
from fusionrec.models.fusion.config import FusionConfig
from fusionrec.models.fusion.recommender import FusionRecommender
from fusionrec.models.fusion.sources import TrainingGraph
from fusionrec.models.registry import model_class
from training_support import RUNNER

FAST = {"embedding_dim": 16, "hidden": [32], "layers": 1, "social_layers": 1,
        "trainer": {"epochs": 12, "batch_size": 256, "lr": 0.02, "patience": 0}}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world():
    return generate(n_users=80, n_items=50, n_interactions=1200, seed=3)


@pytest.fixture(scope="module")
def ctr_split(world):
    return make_split(world, "ctr-kgcn", seed=0)


@pytest.fixture(scope="module")
def topk_split(world):
    return make_split(world, "topk-random", seed=0)


def _text(dataset, dim: int = 12, seed: int = 0) -> TextFeatures:
    rng = np.random.default_rng(seed)
    return TextFeatures(user=rng.normal(size=(dataset.n_users, dim)),
                        item=rng.normal(size=(dataset.n_items, dim)))


def _model(**params) -> FusionRecommender:
    return FusionRecommender(**{**FAST, **params}, runner=RUNNER)


def test_registered_under_fusion():
    assert model_class("fusion") is FusionRecommender


def test_every_encoder_covers_all_users_and_items(ctr_split):
    features = ctr_split.features
    sources = resolve_sources(FusionConfig(), features)
    assert sources == ("interactions", "user_attributes", "item_attributes", "item_text",
                       "social", "kg")
    graph = TrainingGraph.from_features(features, with_social=True)
    encoders = build_encoders(features, sources, FusionConfig(embedding_dim=8), graph,
                              _text(features))
    for name, encoder in encoders.items():
        out = encoder(graph)
        assert out.user.shape == (features.n_users, 8), name
        assert out.item.shape == (features.n_items, 8), name
        assert encoder.user_mask.shape == (features.n_users,), name
        assert torch.isfinite(out.user).all() and torch.isfinite(out.item).all(), name


def test_masks_mark_rows_a_source_knows_nothing_about(ctr_split):
    features = ctr_split.features
    # Only users 0 and 1 are friends; only item 0 links to the KG; item 3 has no text.
    kg = features.kg
    links = kg.link_item == 0
    features = features.replace(
        social=Social(np.array([0]), np.array([1])),
        kg=KnowledgeGraph(kg.head, kg.relation, kg.tail, kg.entities, kg.relations,
                          kg.link_item[links], kg.link_entity[links]))
    text = _text(features)
    item = np.array(text.item)
    item[3] = 0.0
    text = TextFeatures(user=None if False else np.zeros_like(text.user), item=item)
    graph = TrainingGraph.from_features(features, with_social=True)
    encoders = build_encoders(features, ("social", "kg", "item_text"), FusionConfig(), graph,
                              text)
    assert encoders["social"].user_mask.nonzero().flatten().tolist() == [0, 1]
    assert encoders["kg"].item_mask.nonzero().flatten().tolist() == [0]
    assert not encoders["item_text"].item_mask[3] and encoders["item_text"].item_mask[4]
    inter = features.interactions
    warm = inter.item != 0  # item 0 has no training interaction
    cold_item = TrainingGraph.from_pairs(inter.user[warm], inter.item[warm], features.n_users,
                                         features.n_items)
    ids = build_encoders(features, ("interactions",), FusionConfig(mask_cold_ids=True),
                         cold_item, text)["interactions"]
    assert not ids.item_mask[0] and ids.item_mask[1:].all() and ids.user_mask.all()
    assert build_encoders(features, ("interactions",), FusionConfig(), cold_item,
                          text)["interactions"].item_mask.all()  # off by default


def test_all_uses_what_the_data_has_and_requested_sources_must_exist(ctr_split):
    features = ctr_split.features.without("social", "kg", "item_text")
    assert resolve_sources(FusionConfig(), features) == (
        "interactions", "user_attributes", "item_attributes")
    with pytest.raises(ValueError, match=r"\['kg'\].*does not provide"):
        resolve_sources(FusionConfig(sources=["interactions", "kg"]), features)
    split = ctr_split.__class__(**{**ctr_split.__dict__, "features": features})
    model = _model().fit(split)
    assert model.sources_ == ("interactions", "user_attributes", "item_attributes")
    with pytest.raises(ValueError, match="kg"):
        _model(sources=["kg"]).fit(split)


def test_ctr_model_learns_and_beats_popularity(ctr_split):
    model = _model().set_text_features(_text(ctr_split.features)).fit(ctr_split)
    test = ctr_split.test
    auc = auc_score(test.label, model.score(test.user, test.item))
    popularity = np.bincount(ctr_split.train.positives().item,
                             minlength=ctr_split.features.n_items)[test.item]
    assert auc > auc_score(test.label, popularity) + 0.03  # ~0.70 vs 0.65 on this tiny world


@pytest.mark.parametrize("params", [{"fusion": "concat"}, {"fusion": "weighted"},
                                    {"fusion": "gated"}, {"retrieval_loss": "full_softmax"}])
def test_topk_model_ranks_held_out_items_above_chance(topk_split, params):
    model = _model(**params).set_text_features(_text(topk_split.features)).fit(topk_split)
    test = topk_split.test
    users = np.unique(test.user)
    items, _ = model.recommend(users, k=10)
    held_out = set(zip(test.user.tolist(), test.item.tolist()))
    hits = sum((int(u), int(i)) in held_out for u, row in zip(users, items) for i in row)
    # A random top-10 of the ~45 unseen items would hit about len(test) * 10 / 45 times.
    assert hits > 2 * len(test) * 10 / 45


def test_full_softmax_batches_score_every_item_like_the_ranking_does(topk_split):
    from fusionrec.models.common.sampling import NegativeSampler
    from fusionrec.models.fusion.batches import training_batches

    features = topk_split.features
    sampler = NegativeSampler.from_pairs(features.interactions.user, features.interactions.item,
                                         features.n_items)
    batch = next(training_batches(topk_split, sampler, 64, 5, np.random.default_rng(0),
                                  every_item=True))
    assert batch.negatives.tolist() == list(range(features.n_items))
    model = _model(retrieval_loss="full_softmax", trainer={**FAST["trainer"], "epochs": 1})
    model.set_text_features(_text(features)).fit(topk_split)
    module = model.module_.eval()
    with torch.no_grad():
        out = module(batch.users, batch.items, batch.negatives)
        # The every-item fast path (no gather) equals the general path on a permuted pool.
        order = torch.randperm(features.n_items, generator=torch.Generator().manual_seed(0))
        shuffled = module(batch.users, batch.items, order)
    assert out["negative"].shape == (len(batch.users), features.n_items)
    torch.testing.assert_close(out["negative"][:, order], shuffled["negative"])
    rows = torch.arange(len(batch.items))
    torch.testing.assert_close(out["negative"][rows, batch.items], out["positive"])


def test_source_weights_sum_to_one_over_available_sources(ctr_split):
    model = _model(fusion="gated").set_text_features(_text(ctr_split.features)).fit(ctr_split)
    users, items = np.arange(10), np.arange(10)
    weights = model.source_weights(users, items)
    assert weights.sources == model.sources_
    assert weights.user.shape == weights.item.shape == (10, len(model.sources_))
    np.testing.assert_allclose(weights.user.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(weights.item.sum(1), 1.0, rtol=1e-5)


def test_save_load_round_trip_without_training_data(topk_split, tmp_path):
    model = _model(fusion="gated", heads=["ctr", "retrieval"]).set_text_features(
        _text(topk_split.features)).fit(topk_split)
    model.save(tmp_path)
    loaded = FusionRecommender.load(tmp_path)
    pairs = topk_split.test
    np.testing.assert_allclose(loaded.score(pairs.user, pairs.item),
                               model.score(pairs.user, pairs.item), rtol=1e-6)
    users = np.arange(12)
    np.testing.assert_array_equal(loaded.recommend(users, k=5)[0], model.recommend(users, k=5)[0])
    np.testing.assert_allclose(loaded.source_weights(users, users).user,
                               model.source_weights(users, users).user, rtol=1e-6)
    assert loaded.get_params() == model.get_params()
    assert not hasattr(loaded, "module_")  # no graphs, no training rows


def test_ctr_only_model_recommends_through_the_ctr_head(ctr_split):
    model = _model(heads=["ctr"], sources=["interactions", "item_attributes"]).fit(ctr_split)
    users = np.arange(5)
    items, scores = model.recommend(users, k=4)
    direct = model.score(np.repeat(users, 4), items.reshape(-1)).reshape(5, 4)
    np.testing.assert_allclose(scores, direct, rtol=1e-5, atol=1e-6)


def test_item_text_alone_carries_signal_through_the_lm_layer(ctr_split, tmp_path):
    """The synthetic item texts describe each item's topic, which drives the users' tastes: a
    model that sees ONLY the hashed item texts (no ids, no graph) must rank held-out pairs well
    above chance (AUC 0.5; measured 0.64)."""
    params = {"encoder": {"model": "hashing:16", "cache_dir": str(tmp_path)},
              "sources": ["item_text"]}
    model = _model(**params).fit(ctr_split)
    assert model.sources_ == ("item_text",)
    test = ctr_split.test
    assert auc_score(test.label, model.score(test.user, test.item)) > 0.6
    assert any(tmp_path.iterdir())  # the texts went through the encoder and its cache


def test_unknown_param_is_a_clear_error():
    with pytest.raises(ValueError, match="fusion params"):
        FusionRecommender(embeddings=3, runner=RUNNER)


def test_cross_source_map_starts_at_identity_learns_and_survives_save_load(topk_split, tmp_path):
    from fusionrec.models.fusion.model import FusionScorer

    plain = FusionScorer(3, 4, 10, cross_source=False).eval()
    crossed = FusionScorer(3, 4, 10, cross_source=True).eval()
    x, mask = torch.randn(5, 3, 4), torch.ones(5, 3, dtype=torch.bool)
    torch.testing.assert_close(crossed.fuse("user", x, mask), plain.fuse("user", x, mask))
    torch.testing.assert_close(crossed.fuse("item", x, mask), plain.fuse("item", x, mask))

    model = _model(retrieval_loss="full_softmax", cross_source=True).set_text_features(
        _text(topk_split.features)).fit(topk_split)
    mix = model.module_.scorer.user_mix.weight
    dim = model.module_.scorer.user_fusion.out_dim
    assert mix.shape == (dim, dim)
    assert mix.abs().max() > 1e-3  # trained off zero: users' sources meet other item sources
    model.save(tmp_path)
    loaded = FusionRecommender.load(tmp_path)
    users = np.arange(12)
    np.testing.assert_allclose(loaded.score_all(users), model.score_all(users), rtol=1e-5,
                               atol=1e-6)
    assert loaded.get_params()["cross_source"] is True


def test_cosine_scale_scores_are_scaled_cosines_plus_the_item_bias(topk_split, tmp_path):
    from fusionrec.models.fusion.model import FusionScorer

    scorer = FusionScorer(2, 4, 6, cosine_scale=10.0).eval()
    x, mask = torch.randn(3, 2, 4) * 5, torch.ones(3, 2, dtype=torch.bool)
    u, i = scorer.fuse("user", x, mask), scorer.fuse("item", x, mask)
    torch.testing.assert_close(u.norm(dim=-1), torch.full((3,), 10.0))
    torch.testing.assert_close(i.norm(dim=-1), torch.ones(3))
    with pytest.raises(ValueError, match="cosine_scale"):
        FusionConfig(cosine_scale=-1.0)

    model = _model(retrieval_loss="full_softmax", temperature=1.0, cosine_scale=5.0)
    model.set_text_features(_text(topk_split.features)).fit(topk_split)
    users = np.arange(8)
    scores = model.score_all(users)
    bias = model.module_.scorer.retrieval.item_bias.detach().numpy()
    assert np.all(np.abs(scores - bias) <= 5.0 + 1e-4)  # |s * cos| <= s
    model.save(tmp_path)
    np.testing.assert_allclose(FusionRecommender.load(tmp_path).score_all(users), scores,
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("loss", ["full_softmax", "softmax", "bpr"])
def test_negative_pool_trained_never_trains_held_out_items_as_negatives(world, loss):
    # Under cold-items the held-out items have no training interaction. With every item as a
    # negative, each step pushes their content vectors and retrieval bias away from every user;
    # with negative_pool: trained they get no gradient at all from the loss.
    split = make_split(world, "cold-items", seed=0)
    cold = torch.tensor(split.cold.entities)
    params = {"retrieval_loss": loss, "n_negatives": 64 if loss == "softmax" else 4,
              "sources": ["interactions", "item_text"], "mask_cold_ids": True,
              "trainer": {**FAST["trainer"], "epochs": 1}}
    grads = {}
    for pool in ("all", "trained"):
        model = _model(negative_pool=pool, **params).set_text_features(_text(split.features))
        module = model.build(split, model.trainer)
        module.train()
        batches = list(model.training_batches(split, 4096, np.random.default_rng(0)))
        if pool == "trained" and loss != "full_softmax":
            drawn = torch.cat([b.negatives.reshape(-1) for b in batches])
            assert not torch.isin(drawn, cold).any()
        for batch in batches:
            model.loss(module, batch).backward()
        bias = module.scorer.retrieval.item_bias.grad
        grads[pool] = bias[cold].abs().sum().item()
    assert grads["all"] > 0  # the bug this param fixes: cold items were negatives
    assert grads["trained"] == 0


def test_negative_pool_masks_the_full_softmax_outside_the_pool():
    from fusionrec.models.fusion.model import FusionScorer, SourceTables

    pool = torch.tensor([True, False, True, True, False, True])
    scorer = FusionScorer(1, 4, 6, negative_pool=pool).train()
    tables = SourceTables(torch.randn(3, 1, 4), torch.randn(6, 1, 4),
                          torch.ones(3, 1, dtype=torch.bool), torch.ones(6, 1, dtype=torch.bool))
    out = scorer(tables, torch.tensor([0, 1, 2]), torch.tensor([0, 2, 5]), torch.arange(6))
    assert torch.isinf(out["negative"][:, ~pool]).all()
    assert torch.isfinite(out["negative"][:, pool]).all()


def test_negative_pool_must_be_known():
    with pytest.raises(ValueError, match="negative_pool"):
        FusionConfig(negative_pool="warm")
