"""Behaviour every registered model must have; a new registry line inherits these tests.

A model class may declare ``SMOKE_PARAMS`` (a dict of constructor keyword arguments) giving
small, fast settings for these tests (models that need an encoder pass it there), and
``TASKS`` (default ``("ctr", "topk")``), the split tasks it can be fitted on.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fusionrec.config import RunConfig
from fusionrec.data.protocols import make_split
from fusionrec.data.schema import SOURCE_NAMES
from fusionrec.data.synthetic import generate
from fusionrec.models.base import (Recommender, RecommenderBase, SharesTextFeatures,
                                   TorchTrainable)
from fusionrec.models.registry import MODELS, model_class, params_class
from fusionrec.training.run import build_model
from training_support import build

PROTOCOLS = ("topk-random", "ctr-kgcn")


@pytest.fixture(scope="module")
def splits():
    world = generate(n_users=60, n_items=40, n_interactions=900, seed=5)
    return {name: make_split(world, name, seed=1) for name in PROTOCOLS}


def _new(name: str):
    cls = model_class(name)
    return build(cls, **getattr(cls, "SMOKE_PARAMS", {}))


TASK_OF = {"topk-random": "topk", "ctr-kgcn": "ctr"}
CASES = [(name, protocol) for name in sorted(MODELS) for protocol in PROTOCOLS
         if TASK_OF[protocol] in getattr(model_class(name), "TASKS", ("ctr", "topk"))]


@pytest.fixture(scope="module")
def fitted(splits):
    """Models fitted once per (model, protocol), shared by the checks below."""
    cache = {}

    def get(name, protocol):
        if (name, protocol) not in cache:
            cache[name, protocol] = _new(name).fit(splits[protocol])
        return cache[name, protocol]

    return get


@pytest.mark.parametrize("name, protocol", CASES)
def test_fit_returns_self_and_follows_protocol(splits, name, protocol):
    model = _new(name)
    assert model.fit(splits[protocol]) is model
    assert isinstance(model, Recommender)
    assert model.name == name


@pytest.mark.parametrize("name, protocol", CASES)
def test_score_shape_and_finite(splits, fitted, name, protocol):
    model, split = fitted(name, protocol), splits[protocol]
    pairs = split.test
    scores = np.asarray(model.score(pairs.user, pairs.item))
    assert scores.shape == (len(pairs),)
    assert np.all(np.isfinite(scores))


@pytest.mark.parametrize("name, protocol", CASES)
def test_recommend_shapes_sorted_and_excludes_seen(splits, fitted, name, protocol):
    model, split = fitted(name, protocol), splits[protocol]
    users = np.arange(split.features.n_users)
    items, scores = model.recommend(users, k=7)
    assert items.shape == scores.shape == (len(users), 7)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    train = split.train.positives()
    seen = set(zip(train.user.tolist(), train.item.tolist()))
    shown = {(int(u), int(i)) for u, row, srow in zip(users, items, scores)
             for i, s in zip(row, srow) if np.isfinite(s)}
    assert not shown & seen
    single, _ = model.recommend(users[:1], k=3)
    assert single.shape == (1, 3)


@pytest.mark.parametrize("name, protocol", CASES)
def test_save_load_gives_identical_scores(splits, fitted, name, protocol, tmp_path):
    model, split = fitted(name, protocol), splits[protocol]
    model.save(tmp_path)
    loaded = type(model).load(tmp_path)
    pairs = split.test
    np.testing.assert_array_equal(model.score(pairs.user, pairs.item),
                                  loaded.score(pairs.user, pairs.item))
    users = np.arange(10)
    np.testing.assert_array_equal(model.recommend(users, k=5)[0], loaded.recommend(users, k=5)[0])


@pytest.mark.parametrize("name, protocol", CASES)
def test_deterministic_by_seed(splits, fitted, name, protocol):
    split = splits[protocol]
    again = _new(name).fit(split)
    pairs = split.test
    np.testing.assert_array_equal(fitted(name, protocol).score(pairs.user, pairs.item),
                                  again.score(pairs.user, pairs.item))


# -- the declared contract (models/base.py): what callers rely on without probing -----------
@pytest.mark.parametrize("name", sorted(MODELS))
def test_class_declares_the_contract(name):
    cls = model_class(name)
    assert issubclass(cls, RecommenderBase)
    assert cls.name == name
    assert isinstance(cls.sources, tuple) and set(cls.sources) <= set(SOURCE_NAMES)
    assert isinstance(cls.outputs_probabilities, bool)
    # capabilities are declared by subclassing, never merely by having methods of that shape:
    # the Trainer and tuning dispatch on these, so a look-alike would be silently mis-run
    for capability in (TorchTrainable, SharesTextFeatures):
        assert issubclass(cls, capability) == (capability in cls.__mro__), capability.__name__


@pytest.mark.parametrize("name", sorted(MODELS))
def test_params_are_the_registered_dataclass(name):
    """``get_params`` lists exactly the fields of the model's PARAMS dataclass (plus, for the
    fusion models, the trainer settings they fit with)."""
    fields = {f.name for f in dataclasses.fields(params_class(name))}
    assert set(_new(name).get_params()) - {"trainer"} == fields


@pytest.mark.parametrize("name", sorted(MODELS))
def test_build_model_injects_only_declared_run_settings(name):
    """A run's trainer seed reaches every model through what it declares: a TorchTrainable
    takes the trainer section, others a ``seed`` field; an encoder section goes only to models
    with an ``encoder`` field (before, lightgcn-links and the cross-encoders failed on it)."""
    config = RunConfig.from_dict({"model": {"name": name}, "encoder": {"model": "hashing:16"},
                                  "trainer": {"seed": 7}})
    model = build_model(config)
    fields = {f.name for f in dataclasses.fields(params_class(name))}
    if "seed" in fields:  # models whose own params carry the seed (cross-encoder, random, ...)
        assert model.get_params()["seed"] == 7
    elif isinstance(model, TorchTrainable):
        assert model.trainer.seed == 7
    if "encoder" in fields:
        assert model.get_params()["encoder"]["model"] == "hashing:16"


@pytest.mark.parametrize("name, protocol", CASES)
def test_fitted_declarations(splits, fitted, name, protocol):
    model, split = fitted(name, protocol), splits[protocol]
    assert isinstance(model.cold_start, frozenset) and model.cold_start <= {"items", "users"}
    used = model.used_sources()
    assert isinstance(used, tuple) and set(used) <= set(split.features.sources)


@pytest.mark.parametrize("name, protocol", CASES)
def test_score_pairs_without_history_is_score(splits, fitted, name, protocol):
    model, pairs = fitted(name, protocol), splits[protocol].test
    assert pairs.history_items is None
    np.testing.assert_allclose(np.asarray(model.score_pairs(pairs), dtype=np.float64),
                               np.asarray(model.score(pairs.user, pairs.item), dtype=np.float64),
                               rtol=1e-6, atol=1e-7)
