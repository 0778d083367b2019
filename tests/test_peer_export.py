"""The peer-library hand-over (fusionrec.experiments.peer_side.exchange, fusionrec.experiments.peers):
split files round-trip, the exclusion rule matches FusionRec's ``evaluate``, and metrics computed
from exported top-K lists or scores equal FusionRec's own. No peer library is needed."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fusionrec.data.manifest import read_manifest, write_manifest
from fusionrec.data.protocols import make_split
from fusionrec.data.synthetic import generate
from fusionrec.experiments import peers as peer_library
from fusionrec.evaluation.evaluate import evaluate
from fusionrec.experiments.peer_side import exchange
from fusionrec.models.base import RecommenderBase
from fusionrec.models.common.ranking import SeenItems, recommend_by_scores

REPO = Path(__file__).resolve().parents[1]
PEER_SIDE = REPO / "src" / "fusionrec" / "experiments" / "peer_side"


def test_benchmark_script_shares_the_package_scoring():
    spec = importlib.util.spec_from_file_location("peer_library_script",
                                                  REPO / "benchmarks" / "peer_library.py")
    script = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = script  # dataclasses look their module up while defining
    try:
        spec.loader.exec_module(script)
    finally:
        del sys.modules[spec.name]
    assert script.output_metrics is peer_library.output_metrics
    assert script.select is peer_library.select


def test_peer_side_runs_without_fusionrec():
    """The peer runner starts by file path in a python that cannot import fusionrec: ``-S``
    skips site (and the .pth that puts the source checkout on the path), PYTHONPATH brings back
    site-packages for numpy."""
    import numpy

    env = {"PYTHONPATH": str(Path(numpy.__file__).resolve().parents[1])}
    probe = "import importlib.util as u, sys; sys.exit(u.find_spec('fusionrec') is not None)"
    assert subprocess.run([sys.executable, "-S", "-c", probe], env=env).returncode == 0
    done = subprocess.run([sys.executable, "-S", str(PEER_SIDE / "run_peer.py"), "--help"],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "--models" in done.stdout and "implicit-als" in done.stdout


class FixedScores(RecommenderBase):
    """A 'model' with a fixed random score matrix (no ties), FusionRec's recommend verbs."""

    def __init__(self, split, seed: int = 0) -> None:
        n_users, n_items = split.features.n_users, split.features.n_items
        self.table = np.random.default_rng(seed).random((n_users, n_items)).astype(np.float32)
        self.seen = SeenItems.from_pairs(split.train, n_users)

    def score(self, users, items):
        return self.table[np.asarray(users), np.asarray(items)] * 8 - 4  # logits

    def recommend(self, users, k=10, exclude_seen=True):
        return recommend_by_scores(lambda u: self.table[u], users, k, self.seen, exclude_seen)


@pytest.fixture(scope="module")
def dataset():
    return generate(seed=3)


@pytest.fixture(scope="module")
def topk_split(dataset, tmp_path_factory):
    """A top-K split that has been through FusionRec's manifest, as the benchmark reads it."""
    folder = tmp_path_factory.mktemp("manifest")
    write_manifest(make_split(dataset, "topk-random", seed=1), folder, dataset)
    return read_manifest(folder, dataset), json.loads((folder / "split.json").read_text())


def test_split_files_round_trip(topk_split, tmp_path):
    split, meta = topk_split
    arrays = peer_library.to_arrays(split, "synthetic", meta["sha256"])
    back = exchange.read_split(exchange.write_split(tmp_path, arrays))
    assert (back.protocol, back.task, back.seed) == ("topk-random", "topk", 1)
    assert (back.n_users, back.n_items) == (split.features.n_users, split.features.n_items)
    assert back.source_sha256 == meta["sha256"]
    for name in exchange.PARTS:
        ours = split.part(name)
        np.testing.assert_array_equal(back.parts[name].user, ours.user)
        np.testing.assert_array_equal(back.parts[name].item, ours.item)
        np.testing.assert_array_equal(back.parts[name].label, ours.label)


def test_changed_split_file_is_refused(topk_split, tmp_path):
    split, meta = topk_split
    exchange.write_split(tmp_path, peer_library.to_arrays(split, "synthetic", meta["sha256"]))
    with np.load(tmp_path / exchange.SPLIT_ARRAYS) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["test_item"] = arrays["test_item"][::-1].copy()
    np.savez(tmp_path / exchange.SPLIT_ARRAYS, **arrays)
    with pytest.raises(ValueError, match="sha256"):
        exchange.read_split(tmp_path)


def test_exclusions_follow_fusionrec(topk_split):
    split, _ = topk_split
    arrays = peer_library.to_arrays(split, "synthetic", "")
    indptr, indices = exchange.exclusion_csr(arrays, "test")
    user = int(split.test.user[0])
    expected = np.union1d(split.train.item[split.train.user == user],
                          split.valid.item[split.valid.user == user])
    np.testing.assert_array_equal(indices[indptr[user]:indptr[user + 1]], expected)
    indptr, indices = exchange.exclusion_csr(arrays, "valid")
    np.testing.assert_array_equal(indices[indptr[user]:indptr[user + 1]],
                                  np.unique(split.train.item[split.train.user == user]))


def test_top_k_lists_skip_and_pad():
    scores = np.array([[0.1, 0.9, 0.5, 0.7], [0.3, 0.2, 0.1, 0.0]], dtype=np.float32)
    exclude = (np.array([0, 1, 4]), np.array([1, 0, 1, 2]))  # user 0 skips 1; user 1 skips 0-2
    lists = exchange.top_k_lists(scores.copy(), np.array([0, 1]), exclude, k=3)
    np.testing.assert_array_equal(lists, [[3, 2, 0], [3, -1, -1]])


@pytest.mark.parametrize("part", ["valid", "test"])
def test_metrics_from_exported_lists_equal_evaluate(topk_split, tmp_path, part):
    split, meta = topk_split
    model = FixedScores(split)
    arrays = peer_library.to_arrays(split, "synthetic", meta["sha256"])
    # what run_peer.py does with a peer's scores: rank, skip exclusions, write the lists
    users = exchange.ranked_users(arrays, part)
    lists = exchange.top_k_lists(model.table[users].copy(), users,
                                 exchange.exclusion_csr(arrays, part), k=20)
    output = exchange.PeerOutput("fixed", "none", "0", {}, "logit", 0.0,
                                 {f"{p}_users": users for p in ("valid", "test")} |
                                 {f"{p}_items": lists for p in ("valid", "test")})
    exchange.write_outputs(tmp_path, [output], {"k": 20})
    (back,), env = exchange.read_outputs(tmp_path)
    assert env == {"k": 20}
    got = peer_library.topk_metrics(arrays, part, back.arrays[f"{part}_users"],
                                    back.arrays[f"{part}_items"])
    want = evaluate(model, split, part, ks=(10, 20))
    assert got["n_users_evaluated"] > 10
    assert got == pytest.approx(want, rel=1e-12)


def test_metrics_refuse_other_users(topk_split):
    split, _ = topk_split
    arrays = peer_library.to_arrays(split, "synthetic", "")
    users = exchange.ranked_users(arrays, "test")
    with pytest.raises(ValueError, match="other users"):
        peer_library.topk_metrics(arrays, "test", users[1:], np.zeros((len(users) - 1, 20)))


def test_ctr_metrics_from_scores_equal_evaluate(dataset):
    split = make_split(dataset, "ctr-kgcn", seed=2)
    model = FixedScores(split)
    arrays = peer_library.to_arrays(split, "synthetic", "")
    scores = {f"{p}_scores": model.score(split.part(p).user, split.part(p).item)
              for p in ("valid", "test")}
    cold = {f"{p}_cold": ~peer_library.warm_rows(arrays, p) for p in ("valid", "test")}
    output = exchange.PeerOutput("fixed", "none", "0", {}, "logit", 0.0, scores | cold)
    got = peer_library.output_metrics(arrays, output)
    for part in ("valid", "test"):
        want = evaluate(model, split, part)
        assert {k: got[part][k] for k in want} == pytest.approx(want, rel=1e-12)
        assert got[part]["cold_rows"] == pytest.approx(np.mean(cold[f"{part}_cold"]))
    # flags that disagree with the split's own cold rows are refused
    flipped = exchange.PeerOutput("fixed", "none", "0", {}, "logit", 0.0,
                                  scores | cold | {"test_cold": ~cold["test_cold"]})
    with pytest.raises(ValueError, match="cold rows"):
        peer_library.output_metrics(arrays, flipped)
    np.testing.assert_allclose(peer_library.ctr_probabilities(
        np.array([-0.5, 0.3, 1.7]), "preference"), [0.0, 0.3, 1.0])


def test_warm_rows_and_warm_auc():
    part = lambda u, i, y: exchange.PartArrays(np.array(u), np.array(i),  # noqa: E731
                                               np.array(y, dtype=np.float32))
    # training positives: user 0 with items 0 and 1; user 1's only row is a negative
    arrays = exchange.SplitArrays("ctr-kgcn", "ctr", 0, "toy", 3, 4, {
        "train": part([0, 0, 1], [0, 1, 2], [1, 1, 0]),
        "valid": part([0], [0], [1]),
        "test": part([0, 0, 0, 1, 2], [0, 1, 2, 0, 1], [1, 0, 1, 0, 1])})
    np.testing.assert_array_equal(peer_library.warm_rows(arrays, "test"),
                                  [True, True, False, False, False])
    got = peer_library.warm_auc(arrays, "test", np.array([0.9, 0.1, 0.0, 0.0, 0.0]))
    assert got == {"auc_warm": 1.0, "cold_rows": 0.6}


def test_selection_uses_valid_only():
    def out(params):
        return exchange.PeerOutput("m", "lib", "1", params, "logit", 1.0, {})

    outputs = [out({"lr": 0.1}), out({"lr": 0.2})]
    scored = [{"valid": {"auc": 0.70}, "test": {"auc": 0.90}},
              {"valid": {"auc": 0.80}, "test": {"auc": 0.60}}]
    best = peer_library.select(outputs, scored, "auc")
    assert best["m"]["params"] == {"lr": 0.2}
    assert best["m"]["test"]["auc"] == 0.60
