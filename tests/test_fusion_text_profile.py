"""The item-text user profile and the training pair's own item (the e-commerce regression).

On Amazon Instruments the scenario trained with ``hide_batch_edges: false``: each training
positive's own item text then sat inside the user's text profile, a self-match no held-out item
has, and fusion fell below interactions only (benchmarks/results/amazon-ecommerce/).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from fusionrec.config import load_config
from fusionrec.data.protocols import make_split
from fusionrec.data.synthetic import generate
from fusionrec.encoders.features import TextFeatures
from fusionrec.models.fusion.recommender import FusionRecommender
from fusionrec.models.fusion.sources import TrainingGraph
from fusionrec.models.fusion.text_encoder import TextEncoder

ROOT = Path(__file__).resolve().parents[1]
FAST = {"embedding_dim": 8, "layers": 1, "encoder": {"model": "hashing:16"},
        "trainer": {"epochs": 1, "batch_size": 256}}


@pytest.fixture(scope="module")
def split():
    return make_split(generate(n_users=40, n_items=30, n_interactions=300, seed=1),
                      "topk-random", seed=0)


def _text(split) -> TextFeatures:
    rng = np.random.default_rng(0)
    f = split.features
    return TextFeatures(user=rng.normal(size=(f.n_users, 6)).astype(np.float32),
                        item=rng.normal(size=(f.n_items, 6)).astype(np.float32))


def test_hidden_batch_edges_take_the_scored_item_out_of_the_users_text_profile(split):
    features = split.features
    graph = TrainingGraph.from_features(features)
    encoder = TextEncoder(_text(split).item, None, graph, dim=4, hidden=None)
    user, item = int(graph.users[0]), int(graph.items[0])
    others = graph.items[(graph.users == user) & (graph.items != item)]
    with torch.no_grad():
        items = encoder(graph).item
        shown = encoder(graph).user[user]
        hidden = encoder(graph.without([user], [item])).user[user]
    assert torch.allclose(shown, items[graph.items[graph.users == user]].mean(0), atol=1e-6)
    assert torch.allclose(hidden, items[others].mean(0), atol=1e-6)


@pytest.mark.parametrize("hide", [False, True])
def test_training_with_the_own_item_in_the_profile_is_logged(split, caplog, hide):
    model = FusionRecommender(**FAST, sources=["interactions", "item_text"],
                              hide_batch_edges=hide)
    with caplog.at_level(logging.INFO, logger="fusionrec.models.fusion.recommender"):
        model.set_text_features(_text(split)).build(split, model.trainer)
    warned = any("hide_batch_edges" in r.getMessage() for r in caplog.records)
    assert warned is not hide


def test_the_ecommerce_scenario_hides_each_pairs_own_item():
    config = load_config(ROOT / "configs" / "scenario-ecommerce.yaml")
    assert config.model.params["hide_batch_edges"] is True
