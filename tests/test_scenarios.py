"""Scenario presets (configs/scenario-*.yaml): each loads its data and trains the fusion model
for one epoch with the sources its scenario is about. The news scenario runs on the synthetic
world (fast tier); the others read real data (slow tier). The hashing encoder stands in for
MiniLM so the epoch, not the encoding, is what these tests time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fusionrec.config import load_config
from tests.conftest import shared_data_dir

REPO = Path(__file__).resolve().parents[1]
FAST = ["encoder.model=hashing:64", "trainer.epochs=1", "trainer.num_threads=2"]


def _train_one_epoch(name: str, tmp_path, monkeypatch, data_dir=None, extra=()):
    from fusionrec.training.artifacts import load_model
    from fusionrec.evaluation.runs import train_run

    monkeypatch.chdir(REPO)  # the e-commerce config names its spec relative to the repository
    monkeypatch.setenv("FUSIONREC_CACHE", str(tmp_path / "embeddings"))
    config = load_config(REPO / "configs" / f"scenario-{name}.yaml", [*FAST, *extra])
    result = train_run(config, tmp_path / "run", data_dir=data_dir, progress=False)
    assert result.epochs_run == 1
    for part in ("valid", "test"):
        value = result.metrics[part]["ndcg@10"]
        assert np.isfinite(value) and 0 <= value <= 1
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["metrics"]["test"]["ndcg@10"] == pytest.approx(result.metrics["test"]
                                                                   ["ndcg@10"])
    return config, load_model(tmp_path / "run"), result


def _loo_ndcg_by_hand(model, split, k: int = 10) -> tuple[float, int]:
    """Mean NDCG@k of a leave-one-out test part, from the model's raw scores: each test user
    has one held-out item; its rank counts the items scoring higher, the user's training and
    validation items left out; NDCG = 1 / log2(rank + 1) inside the top k, else 0."""
    n_items = split.features.n_items
    seen: dict[int, set[int]] = {}
    for pairs in (split.train, split.valid):
        for user, item in zip(pairs.user.tolist(), pairs.item.tolist()):
            seen.setdefault(user, set()).add(item)
    gains = []
    for user, held_out in zip(split.test.user.tolist(), split.test.item.tolist()):
        scores = model.score(np.full(n_items, user), np.arange(n_items)).astype(np.float64)
        scores[list(seen.get(user, set()) - {held_out})] = -np.inf
        rank = 1 + int((scores > scores[held_out]).sum())
        gains.append(1 / np.log2(rank + 1) if rank <= k else 0.0)
    return float(np.mean(gains)), len(gains)


def test_news_scenario_trains_on_the_synthetic_world(tmp_path, monkeypatch):
    from fusionrec.training.run import load_run_split

    config, model, result = _train_one_epoch("news", tmp_path, monkeypatch)
    assert config.protocol.name == "loo-temporal" and config.data.preset == "synthetic"
    assert set(model.sources_) == {"interactions", "user_attributes", "item_attributes",
                                   "item_text", "social", "kg"}
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    _, split = load_run_split(tmp_path / "run", config, manifest)
    # the reported metric is the textbook leave-one-out NDCG of the saved model's scores
    ndcg, n_users = _loo_ndcg_by_hand(model, split)
    test = result.metrics["test"]
    assert test["ndcg@10"] == pytest.approx(ndcg, abs=1e-6)
    assert test["n_users_evaluated"] == n_users > 250  # one held-out item per reader
    # and one epoch already ranks far above chance (a random list: ~4.5 / n_items)
    assert ndcg > 3 * 4.54 / split.features.n_items


@pytest.mark.slow
def test_ecommerce_scenario_trains_on_amazon_reviews(tmp_path, monkeypatch):
    config, model, result = _train_one_epoch("ecommerce", tmp_path, monkeypatch,
                                             str(shared_data_dir()))
    assert config.data.spec.endswith("amazon-instruments-items.yaml")
    assert set(model.sources_) == {"interactions", "item_text"}  # texts built from reviews
    assert result.metrics["test"]["n_users_evaluated"] == 1429  # 5-core: everyone has a test


@pytest.mark.slow
def test_social_scenario_fuses_friends_on_lastfm(tmp_path, monkeypatch):
    _, model, _ = _train_one_epoch("social", tmp_path, monkeypatch, str(shared_data_dir()))
    assert {"interactions", "social", "item_text", "item_attributes"} <= set(model.sources_)
    assert model.config.fusion == "gated"


@pytest.mark.slow
def test_content_scenario_uses_demographics_and_genres_on_movielens(tmp_path, monkeypatch):
    _, model, result = _train_one_epoch("content", tmp_path, monkeypatch,
                                        str(shared_data_dir()))
    assert {"interactions", "user_attributes", "item_attributes", "item_text"} <= \
        set(model.sources_)
    assert result.metrics["test"]["n_users_evaluated"] > 900
