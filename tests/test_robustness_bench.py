"""The robustness benchmark's building blocks: fake interactions only in training, never on a
held-out pair; a source masked at inference; drops computed against the clean model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from fusionrec.data.leakage import pair_keys


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).parents[1] / "benchmarks" / "robustness.py"
    spec = importlib.util.spec_from_file_location("robustness_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_noise_goes_to_training_only_and_never_on_a_heldout_pair(bench):
    from fusionrec.data.protocols import make_split
    from fusionrec.data.synthetic import generate

    dataset = generate(n_users=50, n_items=40, n_interactions=600)
    split = make_split(dataset, "topk-random", 0)
    noisy_data, noisy = bench.noisy_split(dataset, split, 0.2, seed=1)
    added = len(noisy.train) - len(split.train)
    assert added == round(0.2 * len(split.train.positives()))
    assert len(noisy_data.interactions) == len(dataset.interactions) + added
    assert noisy.valid is split.valid and noisy.test is split.test
    n = dataset.n_items
    fake = pair_keys(noisy.train.user[-added:], noisy.train.item[-added:], n)
    held = pair_keys(np.concatenate([split.valid.user, split.test.user]),
                     np.concatenate([split.valid.item, split.test.item]), n)
    assert not np.isin(fake, held).any()
    assert not np.isin(fake, pair_keys(dataset.interactions.user, dataset.interactions.item,
                                       n)).any()
    feats = noisy.features.interactions
    assert np.isin(fake, pair_keys(feats.user, feats.item, n)).all()
    assert bench.noisy_split(dataset, split, 0.0, 1)[1] is split


def test_masked_source_changes_scores_and_drops_are_relative(bench):
    from fusionrec.data.protocols import make_split
    from fusionrec.data.synthetic import generate

    split = make_split(generate(n_users=40, n_items=30, n_interactions=400), "topk-random", 0)
    model = bench.fit(bench.build("fusion", 1, "hashing:16", 0), split)
    masked = bench.without_source(model, "item_text")
    s = list(masked.sources_).index("item_text")
    assert not masked.tables_.item_mask[:, s].any() and not masked.tables_.user_mask[:, s].any()
    users, items = split.test.user[:20], split.test.item[:20]
    assert not np.allclose(model.score(users, items), masked.score(users, items))
    drops = bench.relative_drops(
        [{"model": "m", "noise": 0.0, "ndcg@10": 0.2}, {"model": "m", "noise": 0.4,
                                                         "ndcg@10": 0.15}],
        [{"source_dropout": 0.1, "removed": None, "ndcg@10": 0.2},
         {"source_dropout": 0.1, "removed": "kg", "ndcg@10": 0.1}])
    assert drops == {"noise": {"m": {"0.4": 0.25}}, "missing_source": {"0.1": {"kg": 0.5}}}
