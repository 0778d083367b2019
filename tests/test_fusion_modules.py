"""Fusion building blocks: fusion layers, source dropout, heads, losses, feature bags, graphs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fusionrec.data.schema import Attributes, Tags, Vocabulary
from fusionrec.models.fusion.attribute_features import feature_bags, own_tag_bag, tag_matrix
from fusionrec.models.fusion.config import FusionConfig
from fusionrec.models.fusion.fusion import (ConcatFusion, GatedFusion, SourceDropout,
                                            WeightedFusion)
from fusionrec.models.fusion.heads import CTRHead, RetrievalHead
from fusionrec.models.fusion.model import FusionScorer
from fusionrec.models.fusion.losses import (bce_loss, bpr_loss, full_softmax_loss,
                                            sampled_softmax_loss)
from fusionrec.models.fusion.sources import TrainingGraph

X = torch.arange(12, dtype=torch.float32).reshape(2, 3, 2)  # (B=2, S=3, d=2)


def test_concat_zeroes_missing_sources_and_rescales_dropped_ones():
    fusion = ConcatFusion(3, 2)
    mask = torch.tensor([[True, True, True], [True, False, True]])
    torch.testing.assert_close(fusion(X, mask), X.flatten(1) * mask.repeat_interleave(2, 1))
    # Row 0 had all three available but kept one: that one is scaled by 3 / 1.
    kept = torch.tensor([[False, True, False], [True, False, True]])
    out = fusion(X, kept, available=torch.ones(2, 3, dtype=torch.bool))
    torch.testing.assert_close(out[0], torch.tensor([0, 0, 6.0, 9.0, 0, 0]))
    torch.testing.assert_close(out[1], torch.tensor([6.0, 7.0, 0, 0, 10.0, 11.0]) * 1.5)
    assert fusion.out_dim == 6


def test_weighted_fusion_softmax_over_kept_sources():
    fusion = WeightedFusion(3, 2)
    with torch.no_grad():
        fusion.logits.copy_(torch.tensor([0.0, math.log(3.0), 5.0]))
    mask = torch.tensor([[True, True, False], [False, False, True]])
    weights = fusion.weights(X, mask)
    torch.testing.assert_close(weights, torch.tensor([[0.25, 0.75, 0.0], [0.0, 0.0, 1.0]]))
    torch.testing.assert_close(fusion(X, mask)[0], 0.25 * X[0, 0] + 0.75 * X[0, 1])
    torch.testing.assert_close(fusion(X, mask)[1], X[1, 2])


def test_gated_fusion_weights_depend_on_the_row_and_respect_masks():
    torch.manual_seed(0)
    fusion = GatedFusion(3, 2)
    x = torch.randn(4, 3, 2)
    mask = torch.tensor([[True] * 3, [True] * 3, [True, False, True], [False] * 3])
    weights = fusion.weights(x, mask)
    torch.testing.assert_close(weights[:3].sum(1), torch.ones(3))
    assert weights[2, 1] == 0 and torch.all(weights[3] == 0)
    assert not torch.allclose(weights[0], weights[1])
    assert torch.all(fusion(x, mask)[3] == 0)  # no source left: zeros


def test_source_dropout_drops_rows_sources_but_never_all():
    dropout = SourceDropout(0.5)
    mask = torch.ones(4000, 3, dtype=torch.bool)
    mask[:, 2] = False  # an unavailable source stays unavailable
    torch.manual_seed(0)
    kept = dropout(mask)
    assert not kept[:, 2].any()
    assert kept.any(1).all()
    # Dropping both (p = 0.25) is undone, so each source survives with p = 0.5 + 0.25.
    assert kept[:, :2].float().mean().item() == pytest.approx(0.75, abs=0.03)
    dropout.eval()
    assert torch.equal(dropout(mask), mask)


def test_per_source_dropout_can_always_drop_one_source():
    # item_id_dropout: 1 drops the items' ID source whenever another source is available
    dropout = SourceDropout((1.0, 0.0))
    mask = torch.ones(100, 2, dtype=torch.bool)
    mask[:10, 1] = False  # rows with the ID source alone keep it
    kept = dropout(mask)
    assert not kept[10:, 0].any() and kept[10:, 1].all()
    assert kept[:10, 0].all()


def test_item_id_dropout_applies_to_the_item_side_only():
    scorer = FusionScorer(2, 4, 6, source_dropout=0.0, item_dropout=(1.0, 0.0)).train()
    x = torch.randn(5, 2, 4)
    mask = torch.ones(5, 2, dtype=torch.bool)
    content_only = scorer.item_fusion(x, torch.tensor([[False, True]] * 5), mask)
    torch.testing.assert_close(scorer.fuse("item", x, mask), content_only)
    both = scorer.user_fusion(x, mask, mask)
    torch.testing.assert_close(scorer.fuse("user", x, mask), both)


def test_heads_shapes_and_retrieval_is_a_biased_dot_product():
    torch.manual_seed(0)
    u, i = torch.randn(5, 4), torch.randn(5, 4)
    ctr = CTRHead(4, hidden=(8,))
    assert ctr(u, i).shape == (5,)
    negatives = torch.randn(5, 3, 4)
    assert ctr(u.unsqueeze(1), negatives).shape == (5, 3)
    head = RetrievalHead(n_items=7)
    with torch.no_grad():
        head.item_bias.copy_(torch.arange(7.0))
    index = torch.tensor([0, 1, 2, 3, 6])
    torch.testing.assert_close(head(u, i, index), (u * i).sum(1) + index.float())
    all_items = torch.randn(7, 4)
    torch.testing.assert_close(head.all_items(u, all_items), u @ all_items.T + torch.arange(7.0))


def test_losses_hand_checked():
    assert bpr_loss(torch.tensor([2.0]), torch.tensor([[0.0]])).item() == pytest.approx(
        math.log(1 + math.exp(-2)))
    assert bce_loss(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0])).item() == pytest.approx(
        math.log(2))
    # Softmax over [pos=1, neg=0] at temperature 0.5: -log(e^2 / (e^2 + 1)).
    value = sampled_softmax_loss(torch.tensor([1.0]), torch.tensor([[0.0]]), temperature=0.5)
    assert value.item() == pytest.approx(-math.log(math.exp(2) / (math.exp(2) + 1)))
    # Full softmax: row 0's positive is item 2 of scores [0, 1, 2] at temperature 0.5.
    scores = torch.tensor([[0.0, 1.0, 2.0]])
    value = full_softmax_loss(scores, torch.tensor([2]), temperature=0.5)
    assert value.item() == pytest.approx(-math.log(math.exp(4) / (1 + math.exp(2) + math.exp(4))))


def _tags() -> Tags:
    # item 0: tag a twice (by users 0, 1), tag b once (user 0); item 1: tag b (user -1).
    return Tags(item=np.array([0, 0, 0, 1]), tag=np.array([0, 0, 1, 1]),
                vocabulary=Vocabulary(("a", "b")), user=np.array([0, 1, 0, -1]))


def test_tag_matrix_is_log_count_times_idf_row_normalised():
    m = tag_matrix(_tags(), n_items=3).toarray()
    idf_a, idf_b = math.log(4 / 2) + 1, math.log(4 / 3) + 1  # (1 + n) / (1 + df), smoothed
    wa, wb = math.log(3) * idf_a, math.log(2) * idf_b
    np.testing.assert_allclose(m[0], [wa / (wa + wb), wb / (wa + wb)], rtol=1e-6)
    np.testing.assert_allclose(m[1], [0, 1])
    np.testing.assert_allclose(m[2], [0, 0])


def test_feature_bags_average_columns_and_split_multi_values():
    attrs = Attributes({"genre": np.array(["rock|pop", "jazz", ""], dtype=object),
                        "year": np.array([1990.0, np.nan, 2010.0])})
    bags = feature_bags(attrs, _tags(), n_rows=3)
    assert bags.features[:3] == ("genre=rock", "genre=pop", "genre=jazz")
    assert bags.features[3:] == ("tag:a", "tag:b")
    dense = bags.bag.toarray()
    np.testing.assert_allclose(dense[0, :3], [0.25, 0.25, 0])  # half of genre's weight of 1/2
    np.testing.assert_allclose(dense[0, 3:].sum(), 0.5)  # tags carry the other half
    np.testing.assert_allclose(dense[1], [0, 0, 0.5, 0, 0.5])
    np.testing.assert_allclose(dense[2], 0)
    # Year standardised over the known values, NaN -> 0, plus a missing flag.
    np.testing.assert_allclose(bags.numeric, [[-1, 0], [0, 1], [1, 0]])
    assert bags.has_rows.tolist() == [True, True, True]
    own = own_tag_bag(_tags(), n_users=3, bags=bags).toarray()
    np.testing.assert_allclose(own[0], [0, 0, 0, 0.5, 0.5])  # user 0 used a and b once each
    np.testing.assert_allclose(own[1, 3:], [1, 0])
    np.testing.assert_allclose(own[2], 0)


def test_training_graph_without_drops_only_the_given_edges():
    graph = TrainingGraph.from_pairs([0, 0, 1, 1], [0, 1, 1, 1], n_users=2, n_items=3)
    assert len(graph.users) == 3  # the repeated (1, 1) counts once
    smaller = graph.without([0], [1])
    assert sorted(zip(smaller.users.tolist(), smaller.items.tolist())) == [(0, 0), (1, 1)]
    torch.testing.assert_close(smaller.user_items.to_dense(),
                               torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))
    assert graph.user_has_items().tolist() == [True, True]


def test_id_source_is_missing_for_cold_users_and_items_only_when_asked():
    from fusionrec.models.fusion.id_encoder import IDEncoder

    graph = TrainingGraph.from_pairs([0, 0, 1], [0, 2, 2], n_users=3, n_items=4)
    plain = IDEncoder(3, 4, 8, layers=1)
    assert plain.user_mask.all() and plain.item_mask.all()
    masked = IDEncoder(3, 4, 8, layers=1, graph=graph)
    assert masked.user_mask.tolist() == [True, True, False]
    assert masked.item_mask.tolist() == [True, False, True, False]
    assert FusionConfig(mask_cold_ids=True).to_dict()["mask_cold_ids"] is True


def test_config_validates_and_round_trips():
    config = FusionConfig(sources=["kg", "interactions"], hidden=[32], heads="ctr")
    assert config.sources == ("kg", "interactions") and config.heads == ("ctr",)
    assert FusionConfig(**config.to_dict()) == config
    assert FusionConfig().resolved_heads("ctr") == ("ctr", "retrieval")
    assert FusionConfig().resolved_heads("topk") == ("retrieval",)
    for bad in ({"sources": ["pictures"]}, {"fusion": "sum"}, {"source_dropout": 1.0},
                {"item_id_dropout": 1.5},
                {"heads": ["rank"]}, {"embedding_dim": 0}, {"retrieval_loss": "hinge"}):
        with pytest.raises(ValueError, match="fusion params"):
            FusionConfig(**bad)
