"""Peer-library entries in benchmark suites (``peer: implicit-als``): run end to end through
``run_suite`` with a fake peer python that speaks the exchange format, scored by FusionRec's
metric code, on the split FusionRec's entries get; a missing peer venv is a recorded failure."""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from fusionrec.config import ConfigError, load_config
from fusionrec.data.manifest import read_manifest
from fusionrec.experiments.benchmark import RECORD_FIELDS, run_suite
from fusionrec.evaluation.evaluate import evaluate
from fusionrec.experiments.peer_entry import CREATE_HINT, PEER_PYTHON_ENV, PeerUnavailable, \
    peer_python, repo_root
from fusionrec.experiments.report import render_report
from fusionrec.experiments.suite import Suite, load_suite
from fusionrec.models.common.ranking import SeenItems, recommend_by_scores
from fusionrec.training.run import load_data

REPO = Path(__file__).resolve().parents[1]
POPULARITY = REPO / "configs" / "quickstart-popularity.yaml"
PEER_SIDE = REPO / "src" / "fusionrec" / "experiments" / "peer_side"


def fake_table(n_users: int, n_items: int) -> np.ndarray:
    """The fake peer's scores: fixed random numbers (no ties), the same on both sides."""
    return np.random.default_rng(1234).random((n_users, n_items))


FAKE_PEER = '''#!{python}
"""A stand-in for the peer venv's python: ignores the runner path it is given, reads the split
through the exchange format and writes two grid points (sign +1: the fake scores; -1: reversed)."""
import argparse, json, os, sys
sys.path.insert(0, {peer_side!r})
import numpy as np
from exchange import PeerOutput, exclusion_csr, ranked_users, read_split, top_k_lists, \\
    write_outputs

{table}

parser = argparse.ArgumentParser()
parser.add_argument("runner")
for flag in ("--split", "--out", "--k", "--seed"):
    parser.add_argument(flag, required=True)
parser.add_argument("--models", nargs="+", required=True)
args = parser.parse_args()
with open({calls!r}, "a") as log:
    log.write(json.dumps({{"runner": args.runner, "seed": int(args.seed), "k": int(args.k),
                          "models": args.models,
                          "threads": os.environ.get("OPENBLAS_NUM_THREADS")}}) + "\\n")
split = read_split(args.split)
table = fake_table(split.n_users, split.n_items)
outputs = []
for sign in (1.0, -1.0):
    arrays = {{}}
    for part in ("valid", "test"):
        users = ranked_users(split, part)
        arrays[part + "_users"] = users
        arrays[part + "_items"] = top_k_lists(sign * table[users], users,
                                              exclusion_csr(split, part), int(args.k))
    outputs.append(PeerOutput(args.models[0], "implicit", "0.0-fake", {{"sign": sign}},
                              "logit", 0.01, arrays))
write_outputs(args.out, outputs, {{"fake": True}})
print("fake peer: 2 grid points")
'''


class TableModel:
    """FusionRec's recommend verb over :func:`fake_table` (what the fake peer ranks by)."""

    def __init__(self, split) -> None:
        self.table = fake_table(split.features.n_users, split.features.n_items)
        self.seen = SeenItems.from_pairs(split.train, split.features.n_users)

    def recommend(self, users, k=10, exclude_seen=True):
        return recommend_by_scores(lambda u: self.table[u], users, k, self.seen, exclude_seen)


def _suite(folder: Path, entries: list, **extra) -> Path:
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump({"name": "peers", "seeds": [0, 1], "entries": entries,
                                    **extra}, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    """A suite with FusionRec's popularity and a fake implicit-als, seeds 0 and 1."""
    root = tmp_path_factory.mktemp("peers")
    python, calls = root / "fake-python", root / "calls.jsonl"
    python.write_text(FAKE_PEER.format(python=sys.executable, peer_side=str(PEER_SIDE),
                                       table=inspect.getsource(fake_table), calls=str(calls)))
    python.chmod(0o755)
    suite = load_suite(_suite(root, [{"name": "popularity", "config": str(POPULARITY)},
                                     {"peer": "implicit-als", "config": str(POPULARITY)}],
                              peer_python=str(python)))
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(PEER_PYTHON_ENV, raising=False)  # the suite's peer_python applies
        outcome = run_suite(suite, root / "out", progress=False)
    return outcome, root / "out", [json.loads(line) for line in calls.read_text().splitlines()]


def test_peer_entry_writes_a_normal_record(fake_run):
    outcome, out, calls = fake_run
    assert outcome.failures == []
    records = json.loads((out / "results.json").read_text())
    assert [(r["model"], r["seed"]) for r in records] == [
        ("popularity", 0), ("popularity", 1), ("implicit-als", 0), ("implicit-als", 1)]
    peer = records[2]
    assert tuple(peer)[:len(RECORD_FIELDS)] == RECORD_FIELDS
    assert peer["dataset"] == "synthetic" and peer["protocol"] == "topk-random"
    assert peer["library"] == "implicit" and peer["library_version"] == "0.0-fake"
    assert peer["sources"] == ["interactions"]
    assert peer["params"] == {"sign": 1.0}  # the reversed ranking loses on valid
    assert peer["selected_on"]["metric"] == "valid ndcg@10"
    # the runner got the run's seed, k = max(evaluation.ks), one model, one BLAS thread
    assert [(c["seed"], c["k"], c["models"], c["threads"]) for c in calls] == [
        (0, 20, ["implicit-als"], "1"), (1, 20, ["implicit-als"], "1")]
    assert calls[0]["runner"].endswith("peer_side/run_peer.py")
    grid = json.loads((out / "runs" / "implicit-als" / "seed-0" / "peer.json").read_text())
    assert [g["params"] for g in grid["grid"]] == [{"sign": 1.0}, {"sign": -1.0}]
    assert grid["grid"][0]["valid ndcg@10"] > grid["grid"][1]["valid ndcg@10"]


@pytest.mark.parametrize("seed", [0, 1])
def test_peer_metrics_equal_fusionrec_evaluate_on_the_same_lists(fake_run, seed):
    _, out, _ = fake_run
    records = json.loads((out / "results.json").read_text())
    peer = next(r for r in records if r["model"] == "implicit-als" and r["seed"] == seed)
    run_dir = out / "runs" / "implicit-als" / f"seed-{seed}"
    config = load_config(run_dir / "config.yaml")
    split = read_manifest(run_dir, load_data(config.data).dataset)
    model = TableModel(split)
    want = evaluate(model, split, "test", ks=(10, 20))
    assert want["n_users_evaluated"] > 50
    assert peer["metrics"] == pytest.approx(want, rel=1e-12)
    valid = evaluate(model, split, "valid", ks=(10, 20))["ndcg@10"]
    assert peer["selected_on"]["value"] == pytest.approx(valid, rel=1e-12)


def test_peer_runs_on_the_split_of_fusionrec_entries(fake_run):
    _, out, _ = fake_run
    records = json.loads((out / "results.json").read_text())
    sha = {(r["model"], r["seed"]): r["split_sha256"] for r in records}
    for seed in (0, 1):
        manifest = json.loads((out / "runs" / "popularity" / f"seed-{seed}" /
                               "split.json").read_text())
        assert sha[("implicit-als", seed)] == sha[("popularity", seed)] == manifest["sha256"]
    assert sha[("popularity", 0)] != sha[("popularity", 1)]  # each seed re-draws the split
    report = (out / "report.md").read_text()
    assert "## synthetic — protocol `topk-random`" in report
    assert f"seed 0 `{sha[('popularity', 0)][:12]}`" in report
    assert "| implicit-als (peer: implicit) | interactions |" in report
    assert "- implicit-als: implicit 0.0-fake" in report and "seed 1: sign 1.0" in report
    assert "different splits" not in report


def test_missing_peer_venv_is_a_recorded_failure(tmp_path, monkeypatch, capsys):
    from fusionrec.cli.main import main

    monkeypatch.setenv(PEER_PYTHON_ENV, str(tmp_path / "no-venv" / "bin" / "python"))
    suite = _suite(tmp_path, [{"peer": "cornac-bpr", "config": str(POPULARITY)},
                              {"name": "popularity", "config": str(POPULARITY)},
                              {"name": "left-out", "config": "not-run.yaml"}])
    assert main(["benchmark", "-c", str(suite), "--out", str(tmp_path / "out"), "--seeds", "0",
                 "--only", "cornac-bpr,popularity", "--no-progress"]) == 1
    records = json.loads((tmp_path / "out" / "results.json").read_text())
    failed, ok = records
    assert failed["model"] == "cornac-bpr" and failed["library"] == "cornac"
    assert failed["metrics"] == {} and failed["split_sha256"] is None
    assert failed["error"].startswith("PeerUnavailable: peer python ")
    assert CREATE_HINT in failed["error"] and "\n" not in failed["error"]
    assert "error" not in ok and ok["metrics"]["ndcg@10"] > 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Failed runs" in report and CREATE_HINT in report
    assert "failed: cornac-bpr seed 0: PeerUnavailable" in capsys.readouterr().out


def test_peer_python_prefers_the_environment(tmp_path, monkeypatch):
    suite_python, env_python = tmp_path / "suite-python", tmp_path / "env-python"
    for path in (suite_python, env_python):
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    monkeypatch.delenv(PEER_PYTHON_ENV, raising=False)
    assert peer_python(suite_python) == suite_python
    monkeypatch.setenv(PEER_PYTHON_ENV, str(env_python))
    assert peer_python(suite_python) == env_python
    monkeypatch.delenv(PEER_PYTHON_ENV)
    (tmp_path / "plain").write_text("not executable")
    with pytest.raises(PeerUnavailable, match="not found"):
        peer_python(tmp_path / "plain")
    default = repo_root() / ".venv-peer" / "bin" / "python"
    if not default.is_file():
        with pytest.raises(PeerUnavailable, match=str(default)):
            peer_python()
    else:
        assert peer_python() == default


@pytest.mark.parametrize("entry, message", [
    ({"config": "a.yaml", "peer": "lightfm"}, "peer must be one of"),
    ({"config": "a.yaml", "peer": "implicit-als", "sources": ["interactions"]}, "no sources"),
    ({"config": "a.yaml", "folder": ""}, "non-empty string"),
])
def test_invalid_peer_entries_name_the_problem(tmp_path, entry, message):
    with pytest.raises(ConfigError, match=message):
        load_suite(_suite(tmp_path, [entry]))


def test_suite_folders_labels_and_per_protocol_metrics(tmp_path):
    suite = load_suite(_suite(tmp_path, [
        {"folder": "a-als", "peer": "implicit-als", "config": "a.yaml"},
        {"folder": "b-als", "peer": "implicit-als", "config": "b.yaml"},
        {"name": "pop", "folder": "b-pop", "config": "b.yaml"}],
        metrics={"ctr-kgcn": ["auc"], "topk-random": ["ndcg@10", "hr@10"]},
        peer_python="bin/python"))
    assert [(e.folder, e.label) for e in suite.entries] == [
        ("a-als", "implicit-als"), ("b-als", "implicit-als"), ("b-pop", "pop")]
    assert suite.metrics_for("topk-random") == ("ndcg@10", "hr@10")
    assert suite.metrics_for("ctr-kgcn") == ("auc",) and suite.metrics_for("other") == ()
    assert suite.peer_python == tmp_path.parent / "bin" / "python"  # like config paths


def test_report_flags_rows_on_different_splits():
    def record(model, seed, sha, **extra):
        return {"dataset": "d", "protocol": "p", "model": model, "sources": ["interactions"],
                "shots": None, "seed": seed, "metrics": {"ndcg@10": 0.1}, "wall_seconds": 1.0,
                "split_sha256": sha, **extra}

    records = [record("a", 0, "1" * 64), record("b", 0, "2" * 64, library="implicit",
                                                 params={"alpha": 1})]
    report = render_report(records, Suite("s", ()))
    assert "**Rows of seed 0 ran on different splits:**" in report
    assert "`111111111111`: a; `222222222222`: b." in report


@pytest.mark.slow
@pytest.mark.skipif(not (repo_root() / ".venv-peer" / "bin" / "python").is_file(),
                    reason="no .venv-peer (python -m venv .venv-peer && .venv-peer/bin/pip "
                           "install -r benchmarks/peer/requirements.txt)")
def test_implicit_als_runs_on_the_synthetic_split(tmp_path, monkeypatch):
    monkeypatch.delenv(PEER_PYTHON_ENV, raising=False)
    suite = load_suite(_suite(tmp_path, [{"name": "popularity", "config": str(POPULARITY)},
                                         {"peer": "implicit-als", "config": str(POPULARITY)}],
                              seeds=[0]))
    outcome = run_suite(suite, tmp_path / "out", progress=False)
    assert outcome.failures == []
    pop, als = outcome.records
    assert als["library"] == "implicit" and als["library_version"] == "0.7.3"
    assert set(als["params"]) == {"regularization", "alpha", "epochs"}
    assert als["split_sha256"] == pop["split_sha256"]
    assert als["metrics"]["ndcg@10"] > pop["metrics"]["ndcg@10"]  # personal beats popular
    grid = json.loads((tmp_path / "out" / "runs" / "implicit-als" / "seed-0" /
                       "peer.json").read_text())
    assert len(grid["grid"]) == 12 and grid["environment"]["implicit"] == "0.7.3"
