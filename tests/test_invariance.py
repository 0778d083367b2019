"""Invariance of the model inputs to the held-out data (issue 17, item 7).

For every protocol in the registry: split the raw dataset, then delete from the *raw* dataset
every held-out pair (valid and test rows: their interactions, tag assignments and reviews; for
the cold protocols also everything users produced about a cold item or by a cold user) and
derive the inputs again for the same parts. What the fusion model reads -- item and user texts,
their LM (hashing) vectors, tag and attribute bags, each user's own tag bag, friend counts, the
training graph, every source encoder's availability masks, buffers and initial output -- must
be identical. If a held-out pair could change any input, deleting it would show.

The leakage tests (``test_leakage``, ``test_protocols_cold``) check the feature tables; this
checks what a model built from them reads.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fusionrec.data.leakage import pair_keys
from fusionrec.data.protocols import PROTOCOLS, derive_features, make_split
from fusionrec.data.schema import Dataset, Tags
from fusionrec.data.synthetic import generate
from fusionrec.models.fusion.attribute_features import feature_bags, own_tag_bag
from fusionrec.models.fusion.build import available_sources, build_encoders, load_text_features
from fusionrec.models.fusion.config import FusionConfig
from fusionrec.models.fusion.sources import TrainingGraph
from fusionrec.text.items import item_texts
from fusionrec.text.users import user_texts

#: Each protocol's parameters for the tiny world, plus generic k-shot training on two of them.
CASES = {
    "ctr-kgcn": ("ctr-kgcn", {}),
    "topk-random": ("topk-random", {}),
    "loo-temporal": ("loo-temporal", {}),
    "fewshot-tallrec": ("fewshot-tallrec", {"history": 3, "n_records": 400, "shots": 64}),
    "cold-items": ("cold-items", {"cold_fraction": 0.25}),
    "cold-items-all": ("cold-items", {"cold_fraction": 0.25, "rank_among": "all"}),
    "cold-users": ("cold-users", {"cold_fraction": 0.25}),
    "cold-users-shots": ("cold-users", {"cold_fraction": 0.25, "user_shots": 2}),
    "links-random": ("links-random", {}),
    "topk-random-shots": ("topk-random", {"shots": 40, "history": 3}),
    "ctr-kgcn-shots": ("ctr-kgcn", {"shots": 40, "history": 3}),
}
CONFIG = FusionConfig(embedding_dim=8, layers=1, social_layers=1, kg_layers=1,
                      encoder={"model": "hashing:16"}, mask_cold_ids=True)


def _world() -> Dataset:
    """The synthetic world with tag assignments made by users (on items they rated and on
    others) and anonymous ones, so the held-out-pair rules on tags have something to drop."""
    dataset = generate(n_users=60, n_items=40, n_interactions=1100, seed=11)
    rng = np.random.default_rng(3)
    inter = dataset.interactions
    tags = dataset.item_attributes.tags
    rated = rng.choice(len(inter), 400, replace=False)
    item = np.r_[inter.item[rated], rng.integers(0, dataset.n_items, 60), tags.item]
    user = np.r_[inter.user[rated], rng.integers(0, dataset.n_users, 60),
                 np.full(len(tags), -1)]
    tag = rng.integers(0, len(tags.vocabulary), item.size)
    tag[-len(tags):] = tags.tag
    attrs = dataclasses.replace(dataset.item_attributes,
                                tags=Tags(item, tag, tags.vocabulary, user=user))
    return dataset.replace(item_attributes=attrs)


def _without_heldout(dataset: Dataset, split) -> Dataset:
    """``dataset`` as if the held-out rows had never been recorded."""
    if split.task == "links":  # held out: friendships, in both directions
        social = dataset.social
        held = pair_keys(np.r_[split.valid.user, split.test.user],
                         np.r_[split.valid.item, split.test.item], dataset.n_users)
        gone = np.isin(pair_keys(social.source, social.target, dataset.n_users), held)
        weight = None if social.weight is None else social.weight[~gone]
        return dataset.replace(social=dataclasses.replace(
            social, source=social.source[~gone], target=social.target[~gone], weight=weight))
    n = dataset.n_items
    held = pair_keys(np.r_[split.valid.user, split.test.user],
                     np.r_[split.valid.item, split.test.item], n)
    train = pair_keys(split.train.user, split.train.item, n)
    cold = split.cold

    def gone(user, item) -> np.ndarray:
        out = np.isin(pair_keys(np.where(user < 0, 0, user), item, n), held) & (user >= 0)
        if cold is not None and cold.kind == "items":  # whoever produced it, anonymous too
            out |= np.isin(item, cold.entities)
        if cold is not None and cold.kind == "users":  # by the cold user, bar their shots
            out |= np.isin(user, cold.entities) & ~np.isin(pair_keys(user, item, n), train)
        return out

    inter = dataset.interactions
    changes = {"interactions": inter.take(~gone(inter.user, inter.item))}
    attrs = dataset.item_attributes
    if attrs is not None and attrs.tags is not None:
        tags = attrs.tags
        user = tags.user if tags.user is not None else np.full(len(tags), -1)
        changes["item_attributes"] = dataclasses.replace(
            attrs, tags=tags.take(~gone(user, tags.item)))
    if dataset.reviews is not None:
        reviews = dataset.reviews
        changes["reviews"] = reviews.take(~gone(reviews.user, reviews.item))
    return dataset.replace(**changes)


def _model_inputs(features: Dataset) -> dict[str, object]:
    """Everything the fusion model reads from ``features``, by input kind."""
    attrs = features.item_attributes
    tags = attrs.tags if attrs is not None else None
    item_bags = feature_bags(attrs.attributes if attrs is not None else None, tags,
                             features.n_items)
    text = load_text_features(features, CONFIG.text_encoder_config())
    social = features.social
    friends = (np.bincount(np.r_[social.source, social.target], minlength=features.n_users)
               if social is not None else np.zeros(features.n_users))
    graph = TrainingGraph.from_features(features, with_social=True)
    torch.manual_seed(0)
    encoders = build_encoders(features, available_sources(features), CONFIG, graph, text)
    out: dict[str, object] = {
        "item_texts": item_texts(features), "user_texts": user_texts(features),
        "item_text_vectors": text.item, "user_text_vectors": text.user,
        "item_tag_bags": item_bags.bag, "item_numeric": item_bags.numeric,
        "own_tag_bags": (own_tag_bag(tags, features.n_users, item_bags)
                         if tags is not None else None),
        "user_attribute_bags": feature_bags(features.user_attributes, None,
                                            features.n_users).bag,
        "friend_counts": friends,
        "graph_pairs": np.c_[graph.users.numpy(), graph.items.numpy()],
        "sources": available_sources(features)}
    with torch.no_grad():
        for name, encoder in encoders.items():
            for key, tensor in [*encoder.named_buffers(), *encoder.named_parameters()]:
                out[f"{name}.{key}"] = tensor.detach().numpy().copy()
            vectors = encoder(graph)
            out[f"{name}.forward.user"] = vectors.user.numpy().copy()
            out[f"{name}.forward.item"] = vectors.item.numpy().copy()
    return out


def _differences(a: dict, b: dict) -> list[str]:
    if a.keys() != b.keys():
        return [f"inputs differ in kind: {sorted(set(a) ^ set(b))}"]
    bad = []
    for key in a:
        x, y = a[key], b[key]
        if x is None or y is None:
            same = x is y
        elif sp.issparse(x):
            same = x.shape == y.shape and (x != y).nnz == 0
        elif isinstance(x, np.ndarray):
            same = x.shape == y.shape and np.array_equal(x, y)
        else:
            same = x == y
        if not same:
            bad.append(key)
    return bad


@pytest.fixture(scope="module")
def world() -> Dataset:
    return _world()


def test_every_registered_protocol_is_covered():
    assert {protocol for protocol, _ in CASES.values()} == set(PROTOCOLS)


@pytest.mark.parametrize("case", sorted(CASES))
def test_model_inputs_ignore_heldout_pairs(world, case):
    protocol, params = CASES[case]
    split = make_split(world, protocol, seed=2, **params)
    deleted = _without_heldout(world, split)
    if split.task != "links":  # the deletion really removed rows the raw data had
        assert len(deleted.interactions) < len(world.interactions)
    rebuilt = derive_features(deleted, protocol, split.train, split.valid, split.test)
    shipped, again = _model_inputs(split.features), _model_inputs(rebuilt)
    assert not _differences(shipped, again), f"{case}: inputs changed: " \
        f"{_differences(shipped, again)}"


def test_the_check_sees_a_leak(world):
    """Features that kept the raw tag table (held-out users' tags included) must fail."""
    split = make_split(world, "topk-random", seed=2)
    leaky = split.features.replace(item_attributes=world.item_attributes)
    deleted = _without_heldout(world, split)
    rebuilt = derive_features(deleted, "topk-random", split.train, split.valid, split.test)
    bad = _differences(_model_inputs(leaky), _model_inputs(rebuilt))
    assert {"item_tag_bags", "own_tag_bags", "item_texts", "user_texts"} <= set(bad)
