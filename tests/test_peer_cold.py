"""Peers on cold-start splits: the item texts a text-aware peer (cornac's CTR) gets are the
leak-free texts of ``split.features``; lists are ranked among the split's candidates and scored
as FusionRec's ``evaluate`` scores its own models; collaborative peers are refused before they
train, and the report shows the refusal in the table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_protocols_cold import _content_only

from fusionrec.data.protocols import make_split
from fusionrec.data.split import ColdStartUnsupported
from fusionrec.data.synthetic import generate
from fusionrec.encoders.config import EncoderConfig
from fusionrec.experiments.benchmark import run_suite
from fusionrec.evaluation.evaluate import evaluate
from fusionrec.experiments.peer_entry import PEER_PYTHON_ENV, repo_root, run_peer_entry
from fusionrec.experiments.peer_side.exchange import read_item_texts, read_split, write_split
from fusionrec.experiments.peer_side.run_peer import Snapshot, make_emitter
from fusionrec.experiments.peer_text import check_peer_cold_start, export_item_texts
from fusionrec.experiments.peers import to_arrays, topk_metrics
from fusionrec.experiments.suite import load_suite
from fusionrec.models.base import RecommenderBase
from fusionrec.text.items import ItemTextualiser
from fusionrec.text.options import TextOptions

REPO = Path(__file__).resolve().parents[1]
POPULARITY = REPO / "configs" / "quickstart-popularity.yaml"


@pytest.fixture(scope="module")
def world():
    return generate(n_users=120, n_items=90, n_interactions=2500, seed=5)


def test_exported_item_texts_are_leak_free(world, tmp_path):
    split = make_split(world, "cold-items", seed=0)
    path = export_item_texts("cornac-ctr", split, None, tmp_path)
    texts = read_item_texts(tmp_path, world.n_items)
    options = TextOptions.for_max_length(EncoderConfig().max_length)
    before = ItemTextualiser(_content_only(world), options)   # before anyone interacted
    raw = ItemTextualiser(world, options)                       # with every tag and review
    cold = [int(i) for i in split.cold.entities]
    assert [texts[i] for i in cold] == [before.text(i) for i in cold]
    # the raw data does describe cold items by user content: the check is not vacuous
    assert any(raw.text(i) != texts[i] for i in cold)
    # warm items read what content-knn reads from the split's features
    seen = ItemTextualiser(split.features, options)
    assert texts == [seen.text(i) for i in range(world.n_items)]
    # a changed file is refused; a collaborative peer gets no texts
    meta = json.loads(path.read_text())
    meta["texts"][cold[0]] += " loved by everyone"
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="not a fusionrec-peer-item-text file"):
        read_item_texts(tmp_path, world.n_items)
    assert export_item_texts("implicit-als", split, None, tmp_path / "als") is None


class _FixedScores(RecommenderBase):
    """Fixed random scores for every (user, item), cold items included (no ties)."""

    name = "fixed"
    cold_start = frozenset({"items"})

    def __init__(self, n_users: int, n_items: int) -> None:
        self.table = np.random.default_rng(7).random((n_users, n_items))

    def score(self, users, items):
        return self.table[np.asarray(users), np.asarray(items)]


@pytest.mark.parametrize("rank_among", ["cold", "all"])
def test_peer_lists_rank_the_candidates_as_evaluate_does(world, tmp_path, rank_among):
    split = make_split(world, "cold-items", seed=1, rank_among=rank_among)
    arrays = read_split(write_split(tmp_path, to_arrays(split, world.name, "sha")))
    assert arrays.cold_kind == "items"
    assert (arrays.candidates is None) == (rank_among == "all")
    model = _FixedScores(world.n_users, world.n_items)
    snapshot = Snapshot({}, 0.0, lambda users: model.table[users].copy(),
                        lambda users, items: model.score(users, items))
    lists = make_emitter(arrays, k=20, scores_cold_items=True)(snapshot)
    for part in ("valid", "test"):
        listed = lists[f"{part}_items"]
        if rank_among == "cold":
            assert np.isin(listed[listed >= 0], split.cold.candidates(part)).all()
        ours = topk_metrics(arrays, part, lists[f"{part}_users"], listed)
        theirs = evaluate(model, split, part, ks=(10, 20)) if rank_among == "cold" else None
        if theirs is not None:
            assert ours == pytest.approx({k: v for k, v in theirs.items() if k in ours})
    # without scoring cold items (a collaborative peer), every cold candidate is at the floor
    floored = make_emitter(arrays, k=20)(snapshot)
    if rank_among == "cold":
        assert not np.array_equal(floored["test_items"], lists["test_items"])


def test_collaborative_peers_are_refused_on_cold_splits(world):
    split = make_split(world, "cold-items", seed=0)
    with pytest.raises(ColdStartUnsupported, match="implicit-als cannot score cold items"):
        check_peer_cold_start("implicit-als", split)
    check_peer_cold_start("cornac-ctr", split)  # scores cold items from their text
    users = make_split(world, "cold-users", seed=0)
    with pytest.raises(ColdStartUnsupported, match="cornac-ctr cannot score cold users"):
        check_peer_cold_start("cornac-ctr", users)
    check_peer_cold_start("implicit-als", make_split(world, "topk-random", seed=0))


def _suite(tmp_path, entries) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({"name": "cold", "seeds": [0], "entries": entries}))
    return path


def test_report_shows_the_refusals_in_the_table(tmp_path, monkeypatch):
    monkeypatch.setenv(PEER_PYTHON_ENV, sys.executable)  # never started: refused before
    monkeypatch.setenv("FUSIONREC_CACHE", str(tmp_path / "cache"))
    cold = {"protocol.name": "cold-items", "encoder.model": "hashing:32"}
    suite = load_suite(_suite(tmp_path, [
        {"name": "random", "config": str(POPULARITY), "set": {**cold, "model.name": "random"}},
        {"name": "popularity", "config": str(POPULARITY), "set": cold},
        {"name": "content-map", "config": str(POPULARITY),
         "set": {**cold, "model.name": "content-map"}},
        {"peer": "implicit-als", "config": str(POPULARITY), "set": cold}]))
    outcome = run_suite(suite, tmp_path / "out", progress=False)
    by_model = {r["model"]: r for r in outcome.records}
    assert by_model["popularity"]["error"].startswith("ColdStartUnsupported: popularity cannot")
    assert by_model["implicit-als"]["error"].startswith("ColdStartUnsupported: implicit-als")
    assert by_model["content-map"]["metrics"]["ndcg@10"] > by_model["random"]["metrics"][
        "ndcg@10"]
    report = outcome.report_path.read_text()
    table = report.split("## synthetic — protocol `cold-items`")[1].split("\n\n")[1]
    assert "| popularity | – | – | 1 | refused: cannot score cold items | – |" in table
    assert "| implicit-als (peer: implicit) | interactions | – | 1 | refused: cannot score " \
           "cold items |" in table
    assert "| content-map |" in table and "| random |" in table
    assert "## Failed runs" in report  # the full message is kept there


@pytest.mark.slow
@pytest.mark.skipif(not (repo_root() / ".venv-peer" / "bin" / "python").is_file(),
                    reason="no .venv-peer (python -m venv .venv-peer && .venv-peer/bin/pip "
                           "install -r benchmarks/peer/requirements.txt)")
def test_cornac_ctr_scores_cold_items_from_their_text(world, tmp_path, monkeypatch):
    from fusionrec.config import load_config

    monkeypatch.delenv(PEER_PYTHON_ENV, raising=False)
    config = load_config(POPULARITY, ["protocol.name=cold-items"])
    result = run_peer_entry("cornac-ctr", config, tmp_path / "ctr")
    assert result.library == "cornac" and set(result.params) == {"lambda_u", "lambda_v",
                                                                 "epochs"}
    random = load_config(POPULARITY, ["protocol.name=cold-items", "model.name=random"])
    from fusionrec.evaluation.runs import train_run

    chance = train_run(random, tmp_path / "random", progress=False).metrics["test"]
    assert result.test["ndcg@10"] > chance["ndcg@10"] + 0.05
    # it read the item texts, and the report's sources column says so
    assert result.record_fields()["sources"] == ["interactions", "item_attributes",
                                                 "item_text", "kg", "reviews"]
