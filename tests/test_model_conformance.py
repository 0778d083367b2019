"""Behaviour every registered model must have; a new registry line inherits these tests.

A model class may declare ``SMOKE_PARAMS`` (a dict of constructor keyword arguments) giving
small, fast settings for these tests (models that need an encoder pass it there), and
``TASKS`` (default ``("ctr", "topk")``), the split tasks it can be fitted on.
"""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.data.protocols import make_split
from fusionrec.data.synthetic import generate
from fusionrec.models.base import Recommender
from fusionrec.models.registry import MODELS, model_class

PROTOCOLS = ("topk-random", "ctr-kgcn")


@pytest.fixture(scope="module")
def splits():
    world = generate(n_users=60, n_items=40, n_interactions=900, seed=5)
    return {name: make_split(world, name, seed=1) for name in PROTOCOLS}


def _new(name: str):
    cls = model_class(name)
    return cls(**dict(getattr(cls, "SMOKE_PARAMS", {})))


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
