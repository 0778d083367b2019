"""A suite's ``compare`` section: paired B - A deltas of named rows on the same test users,
per-seed values, row costs from the run folders, and the report table end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from fusionrec.cli.main import main
from fusionrec.config import ConfigError
from fusionrec.experiments.compare import (CompareSpec, comparison_lines, epoch_cost,
                                           run_comparison)
from fusionrec.experiments.suite import load_suite
from fusionrec.experiments.units import UnitValues

REPO = Path(__file__).resolve().parents[1]


def _units(users, ndcg):
    return UnitValues("topk", "test", {"user": np.asarray(users), "ndcg@10": np.asarray(ndcg)})


def _record(seed, ndcg, wall=10.0):
    return {"dataset": "d", "protocol": "p", "sources": ["interactions"], "seed": seed,
            "metrics": {"ndcg@10": ndcg}, "wall_seconds": wall}


def test_compare_spec_validates(tmp_path):
    with pytest.raises(ConfigError, match="list of pairs"):
        CompareSpec.from_raw({"metric": "ndcg@10"})
    with pytest.raises(ConfigError, match="unknown key"):
        CompareSpec.from_raw({"pairs": [{"a": "x", "b": "y"}], "bootstraps": 3})
    with pytest.raises(ConfigError, match=r"pairs\[0\]"):
        CompareSpec.from_raw({"pairs": [{"a": "x", "b": "x"}]})
    with pytest.raises(ConfigError, match="n_boot"):
        CompareSpec.from_raw({"pairs": [{"a": "x", "b": "y"}], "n_boot": 5})
    spec = CompareSpec.from_raw({"pairs": [{"a": "x", "b": "y"}, {"a": "x", "b": "z"}]})
    assert spec.entries == ("x", "y", "z")
    suite = {"name": "s", "entries": [{"name": "x", "config": "configs/quickstart.yaml"}],
             "compare": {"pairs": [{"a": "x", "b": "nope"}]}}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    with pytest.raises(ConfigError, match="not entries"):
        load_suite(path)


def test_pairs_align_users_per_seed_and_costs_come_from_run_folders(tmp_path):
    """B beats A by exactly 0.1 on every user: delta and both CI ends are 0.1, whatever the
    order the users were stored in; a row without units gets a note, not a number."""
    records = [_record(0, 0.35, 20.0), _record(1, 0.25, 30.0),   # a
               _record(0, 0.45, 60.0), _record(1, 0.35, 100.0),  # b
               _record(0, 0.30)]                                  # c (no units stored)
    folders = ["a", "a", "b", "b", "c"]
    stored = {("a", 0): _units([0, 1, 2, 3], [0.5, 0.4, 0.3, 0.2]),
              ("a", 1): _units([0, 1], [0.3, 0.2]),
              ("b", 0): _units([3, 2, 1, 0], [0.3, 0.4, 0.5, 0.6]),  # reversed order
              ("b", 1): _units([1, 0], [0.3, 0.4])}
    for seed, seconds in ((0, [2.0, 4.0]), (1, [6.0])):  # epoch 0 (initial check) is no epoch
        run = tmp_path / "b" / f"seed-{seed}"
        run.mkdir(parents=True)
        lines = [{"epoch": 0, "seconds": 0.0}] + [{"epoch": i + 1, "seconds": s}
                                                  for i, s in enumerate(seconds)]
        (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    spec = CompareSpec.from_raw({"pairs": [{"a": "a", "b": "b"}, {"a": "a", "b": "c"}],
                                 "n_boot": 200})
    comparison = run_comparison(spec, records, folders,
                                lambda folder, seed: stored.get((folder, seed)),
                                lambda folder, seed: tmp_path / folder / f"seed-{seed}")
    assert comparison.metric == "ndcg@10"
    b_vs_a, c_vs_a = comparison.pairs
    assert b_vs_a.result.delta == pytest.approx(0.1)
    assert b_vs_a.result.low == pytest.approx(0.1) and b_vs_a.result.high == pytest.approx(0.1)
    assert b_vs_a.result.n_seeds == 2 and b_vs_a.result.n_units == 6
    assert b_vs_a.per_seed_a == {0: 0.35, 1: 0.25} and b_vs_a.per_seed_b == {0: 0.45, 1: 0.35}
    assert c_vs_a.result is None and "no per-unit values for c" in c_vs_a.note
    costs = {c.entry: c for c in comparison.costs}
    assert costs["b"].wall_seconds == pytest.approx(80.0) and costs["b"].seeds == 2
    # seed 0: 2 epochs at 3 s, seed 1: 1 epoch at 6 s
    assert costs["b"].epochs == pytest.approx(1.5)
    assert costs["b"].seconds_per_epoch == pytest.approx(4.5)
    assert costs["a"].epochs is None and costs["c"].seeds == 1
    assert epoch_cost(tmp_path / "missing") is None
    text = "\n".join(comparison_lines(comparison))
    assert "| b vs a | 0.3000 | 0.4000 | +0.1000 [+0.1000, +0.1000] |" in text
    assert "0.3500 / 0.4500 | 0.2500 / 0.3500 |" in text
    assert "| c vs a | 0.3500 | 0.3000 | – (no per-unit values for c) |" in text
    assert "| b | 2 | 80 | 1.5 | 4.5 |" in text


def test_benchmark_compare_section_end_to_end(tmp_path):
    """Through the runner: units written for the named rows, compare.json, the report table;
    the paired delta of per-user values equals the difference of the reported means."""
    fast = {"encoder.model": "hashing:16", "trainer.epochs": 2, "trainer.batch_size": 512,
            "model.params.embedding_dim": 8}
    config = str(REPO / "configs" / "quickstart.yaml")
    suite = {"name": "compare-smoke", "seeds": [0], "metrics": ["ndcg@10"],
             "compare": {"pairs": [{"a": "all", "b": "ids"}], "n_boot": 200},
             "entries": [{"name": "all", "config": config, "set": fast},
                         {"name": "ids", "config": config,
                          "set": {**fast, "model.params.sources": ["interactions"]}}]}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    out = tmp_path / "out"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FUSIONREC_CACHE", str(tmp_path / "embeddings"))
        assert main(["benchmark", "-c", str(path), "--out", str(out),
                     "--set", "trainer.num_threads=1", "--no-progress"]) == 0
    records = {r["model"]: r for r in json.loads((out / "results.json").read_text())}
    compared = json.loads((out / "compare.json").read_text())
    (pair,) = compared["pairs"]
    assert pair["result"]["delta"] == pytest.approx(
        records["ids"]["metrics"]["ndcg@10"] - records["all"]["metrics"]["ndcg@10"], abs=1e-9)
    costs = {c["entry"]: c for c in compared["costs"]}
    assert costs["ids"]["epochs"] == 2 and costs["ids"]["seconds_per_epoch"] > 0
    report = (out / "report.md").read_text()
    assert "## Paired comparisons" in report and "| ids vs all |" in report
