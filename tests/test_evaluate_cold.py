"""Evaluation on cold-start splits: ranking among candidates, the typed refusal of models that
cannot score a cold entity, the models that can, and the sparse-user breakdown."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fusionrec.cli.main import main
from fusionrec.data.protocols import make_split
from fusionrec.data.schema import Dataset, Interactions, Vocabulary
from fusionrec.data.split import ColdStart, ColdStartUnsupported, Pairs, Split
from fusionrec.data.synthetic import generate
from fusionrec.evaluation.activity import activity_breakdown, training_counts
from fusionrec.experiments.activity_report import activity_lines
from fusionrec.evaluation.evaluate import evaluate, evaluate_detailed, ranked_lists
from fusionrec.models.base import RecommenderBase
from fusionrec.models.registry import model_class
from training_support import build


def _pairs(rows) -> Pairs:
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, 2)
    return Pairs(rows[:, 0], rows[:, 1], np.ones(len(rows)))


class _ByIndex(RecommenderBase):
    """Scores every item by its index (higher is better); declares it can score cold items."""

    name = "by-index"
    cold_start = frozenset({"items"})

    def score(self, users, items):
        return np.asarray(items, dtype=np.float64)

    def recommend(self, users, k=10, exclude_seen=True):
        raise AssertionError("a candidate split must not rank the full catalogue")


def _toy(cold: ColdStart) -> Split:
    train, valid, test = _pairs([[0, 0], [0, 7], [1, 1]]), _pairs([[0, 6]]), \
        _pairs([[0, 3], [1, 4]])
    features = Dataset("toy", Vocabulary(("u0", "u1")),
                       Vocabulary(tuple(f"i{i}" for i in range(8))),
                       Interactions(train.user, train.item))
    return Split("toy", "topk", 0, train, valid, test, features, cold=cold)


def test_ranking_among_candidates_excludes_train_and_valid_items():
    # test candidates: 3, 4, 6, 7 (7 is user 0's training item, 6 their valid item)
    split = _toy(ColdStart("items", [3, 4, 6], None, [3, 4, 6, 7]))
    users, lists, _ = ranked_lists(_ByIndex(), split, "test", k=3)
    assert list(users) == [0, 1]
    assert lists.tolist() == [[4, 3, -1], [7, 6, 4]]
    metrics = evaluate(_ByIndex(), split, "test", ks=(1, 3))
    # user 0: test item 3 at rank 2; user 1: test item 4 at rank 3
    assert metrics["hr@1"] == 0.0 and metrics["recall@3"] == 1.0
    assert metrics["ndcg@3"] == pytest.approx((1 / np.log2(3) + 1 / np.log2(4)) / 2)
    assert metrics["coverage@3"] == pytest.approx(4 / 4)  # over the 4 candidates


def test_a_model_without_cold_start_is_refused():
    split = _toy(ColdStart("items", [3, 4, 6], None, [3, 4, 6, 7]))
    model = _ByIndex()
    model.cold_start = frozenset()
    with pytest.raises(ColdStartUnsupported, match="by-index cannot score cold items"):
        evaluate(model, split, "test")


@pytest.fixture(scope="module")
def world():
    return generate(n_users=80, n_items=60, n_interactions=1500, seed=5)


def _fit(name, split, **params):
    cls = model_class(name)
    return build(cls, **{**getattr(cls, "SMOKE_PARAMS", {}), **params}).fit(split)


def _no_training(*args, **kwargs):
    raise AssertionError("training started on a split the model cannot be evaluated on")


def test_pure_id_models_say_they_cannot_score_cold_entities(world):
    items = make_split(world, "cold-items", seed=0)
    users = make_split(world, "cold-users", seed=0)
    for split, kind in ((items, "items"), (users, "users")):
        # the trainer's validation pass already refuses: no epoch is spent on a fake number
        with pytest.raises(ColdStartUnsupported, match=f"bpr-mf cannot score cold {kind}: "
                                                       r"\d+ \w+ of the valid part"):
            _fit("bpr-mf", split)
        untrained = build(model_class("bpr-mf"), **model_class("bpr-mf").SMOKE_PARAMS)
        untrained.training_batches = _no_training
        with pytest.raises(ColdStartUnsupported):  # refused before the first epoch
            untrained.fit(split)
        with pytest.raises(ColdStartUnsupported, match="test part"):
            evaluate(untrained, split, "test")
    with pytest.raises(ColdStartUnsupported, match="popularity cannot score cold items"):
        evaluate(_fit("popularity", items), items, "test")
    # ranking over every item does not make a cold item scorable
    every = make_split(world, "cold-items", seed=0, rank_among="all")
    with pytest.raises(ColdStartUnsupported):
        evaluate(_fit("popularity", every), every, "test")


def test_popularity_ranks_for_cold_users_and_bpr_with_user_shots(world):
    split = make_split(world, "cold-users", seed=0)
    metrics = evaluate(_fit("popularity", split), split, "test", ks=(10,))
    assert metrics["n_users_evaluated"] == np.unique(split.test.user).size
    assert 0 < metrics["ndcg@10"] <= 1
    shots = make_split(world, "cold-users", seed=0, user_shots=2)
    # every cold user here has >= 5 interactions, so each now trains on 2: BPR-MF may rank
    assert set(training_counts(shots)[shots.cold.entities]) == {2}
    result = evaluate_detailed(_fit("bpr-mf", shots), shots, "test", ks=(10,))
    assert 0 <= result.metrics["ndcg@10"] <= 1
    assert result.by_activity.bucket("1-5").n_users == result.metrics["n_users_evaluated"]
    # a user with a single interaction keeps it for test and gets no shot: refused again
    one = np.flatnonzero(np.bincount(world.interactions.user) >= 1)[0]
    inter = world.interactions
    keep = (inter.user != one) | (np.arange(len(inter)) == np.flatnonzero(inter.user == one)[0])
    sparse = world.replace(interactions=inter.take(keep))
    split = make_split(sparse, "cold-users", seed=0, user_shots=2, cold_fraction=0.99)
    assert training_counts(split)[one] == 0 and one in split.cold.entities
    with pytest.raises(ColdStartUnsupported, match="bpr-mf cannot score cold users: 1 "):
        evaluate(_fit("bpr-mf", split), split, "test")  # refused in fit or in evaluate


@pytest.mark.parametrize("protocol", ["cold-items", "cold-users"])
def test_fusion_with_text_scores_cold_entities(world, protocol, tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONREC_CACHE", str(tmp_path))
    split = make_split(world, protocol, seed=0)
    model = _fit("fusion", split)
    kind = protocol.split("-")[1]
    assert kind in model.cold_start
    result = evaluate_detailed(model, split, "test", ks=(10,))
    assert 0 <= result.metrics["ndcg@10"] <= 1
    assert result.metrics["n_users_evaluated"] == np.unique(split.test.user).size
    if protocol == "cold-users":  # every test user is cold: all in bucket 0
        assert result.by_activity.bucket("0").n_users == result.metrics["n_users_evaluated"]
    with pytest.raises(ColdStartUnsupported, match=f"fusion cannot score cold {kind}"):
        _fit("fusion", split, sources=["interactions"])


def test_activity_breakdown_by_hand():
    # users 0..4 with 0, 3, 6, 30, 60 training interactions; one relevant item each
    counts = np.array([0, 3, 6, 30, 60])
    users = np.arange(5)
    recommended = np.array([[9, 1], [2, 9], [9, 9], [3, 9], [9, 4]])
    relevant = [np.array([1]), np.array([2]), np.array([5]), np.array([3]), np.array([4])]
    out = activity_breakdown(users, recommended, relevant, counts, ks=(1, 2))
    assert [b.label for b in out.buckets] == ["0", "1-5", "6-20", "21-50", ">50"]
    assert [b.n_users for b in out.buckets] == [1, 1, 1, 1, 1]
    assert out.bucket("0").metrics["hr@1"] == 0 and out.bucket("0").metrics["hr@2"] == 1
    assert out.bucket("1-5").metrics["ndcg@1"] == 1
    assert out.bucket("6-20").metrics["recall@2"] == 0
    assert out.bucket(">50").metrics["ndcg@2"] == pytest.approx(1 / np.log2(3))
    empty = activity_breakdown(users[:1], recommended[:1], relevant[:1], counts, ks=(1,))
    assert empty.bucket("6-20").n_users == 0 and empty.bucket("6-20").metrics == {}
    assert out.to_dict()["21-50"] == {"n_users": 1, "metrics": dict(out.bucket("21-50").metrics)}


def test_breakdown_buckets_partition_the_evaluated_users(world):
    split = make_split(world, "topk-random", seed=0)
    result = evaluate_detailed(_fit("popularity", split), split, "test", ks=(10,))
    buckets = result.by_activity.buckets
    assert sum(b.n_users for b in buckets) == result.metrics["n_users_evaluated"]
    # the overall mean is the user-weighted mean of the bucket means
    weighted = sum(b.n_users * b.metrics["ndcg@10"] for b in buckets if b.n_users)
    assert weighted / result.metrics["n_users_evaluated"] == pytest.approx(
        result.metrics["ndcg@10"])


def test_report_table_has_one_column_per_occupied_bucket():
    def record(model, seed, value):
        return {"model": model, "by_activity": {
            "0": {"n_users": 0, "metrics": {}},
            "1-5": {"n_users": 10, "metrics": {"ndcg@10": value}},
            "6-20": {"n_users": 4, "metrics": {"ndcg@10": value / 2}}}}

    rows = {("a", ("interactions",), None): [record("a", 0, 0.2), record("a", 1, 0.4)],
            ("b", (), None): [{"model": "b"}]}  # a record without a breakdown (CTR, peers)
    lines = activity_lines(rows, "ndcg@10")
    assert "| model | sources | shots | 1-5 (10) | 6-20 (4) |" in lines
    assert "| a | interactions | – | 0.3000 ± 0.1414 | 0.1500 ± 0.0707 |" in lines
    assert not any(line.startswith("| b ") for line in lines)
    assert activity_lines(rows, "auc") == []


def test_cli_refuses_in_one_line_and_reloads_cold_runs(tmp_path, capsys):
    configs = Path(__file__).resolve().parents[1] / "configs"
    fast = ["--set", "trainer.epochs=1", "--set", "trainer.num_threads=1", "--no-progress"]
    assert main(["train", "-c", str(configs / "quickstart-bprmf.yaml"), "--out",
                 str(tmp_path / "bpr"), "--set", "protocol.name=cold-items", *fast]) == 2  # a user error
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("fusionrec: error: bpr-mf cannot score cold items")
    run = tmp_path / "pop"
    assert main(["train", "-c", str(configs / "quickstart-popularity.yaml"), "--out", str(run),
                 "--set", "protocol.name=cold-users", "--set", "protocol.params.user_shots=1",
                 *fast]) == 0
    out = tmp_path / "metrics.json"
    # re-evaluating reads the split manifest: the same cold users and candidates come back
    assert main(["evaluate", str(run), "--json", str(out)]) == 0
    manifest = json.loads((run / "manifest.json").read_text())
    assert json.loads(out.read_text())["metrics"] == pytest.approx(manifest["metrics"]["test"])
