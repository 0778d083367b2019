"""Paired statistics (bootstrap CI, randomisation test, DeLong), per-unit test values, and the
source-ablation suite end to end on the synthetic world (report section and PNG figures)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from fusionrec.cli.main import main
from fusionrec.config import ConfigError
from fusionrec.experiments.ablation import AblationSpec, run_ablation
from fusionrec.experiments.paired import delong, paired_auc_delta, paired_mean_delta
from fusionrec.experiments.units import UnitValues, ranking_rows

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "benchmarks" / "smoke-ablation.yaml"
PNG = b"\x89PNG\r\n\x1a\n"


# -- paired statistics ------------------------------------------------------------------------
def test_identical_runs_give_zero_delta_and_p_one():
    values = np.random.default_rng(0).random(200)
    result = paired_mean_delta([values], [values.copy()], n_boot=200)
    assert result.delta == 0 and result.low == 0 and result.high == 0
    assert result.p_value == 1.0 and result.n_units == 200 and result.n_seeds == 1


def test_mean_delta_ci_matches_the_normal_approximation():
    rng = np.random.default_rng(1)
    a = rng.random(2000)
    b = a + 0.02 + rng.normal(0, 0.1, size=2000)  # true delta 0.02, sd of differences 0.1
    result = paired_mean_delta([a], [b], n_boot=2000, seed=3)
    d = b - a
    se = d.std(ddof=1) / np.sqrt(d.size)
    assert result.delta == pytest.approx(d.mean())
    # percentile bootstrap ~ mean ± 1.96 se
    assert result.low == pytest.approx(d.mean() - 1.96 * se, abs=0.3 * se)
    assert result.high == pytest.approx(d.mean() + 1.96 * se, abs=0.3 * se)
    assert result.p_value < 0.001  # z ≈ 9


def test_no_effect_is_not_significant_and_seeds_pool_as_mean_of_deltas():
    rng = np.random.default_rng(2)
    a = [rng.random(300), rng.random(500)]
    b = [x + rng.normal(0, 0.05, size=x.size) for x in a]  # no true difference
    b[1] = b[1] + 0.1  # seed 1 only: +0.1
    result = paired_mean_delta(a, b, n_boot=500)
    per_seed = [np.mean(y - x) for x, y in zip(a, b)]
    assert result.delta == pytest.approx(np.mean(per_seed))
    assert result.n_seeds == 2 and result.n_units == 800
    null = paired_mean_delta([a[0]], [b[0]], n_boot=500)
    assert null.low < 0 < null.high and null.p_value > 0.05


def _brute_force_delong(y, a, b):
    """O(n^2) structural components straight from DeLong et al.'s definition."""
    y = y > 0.5
    comps = []
    for s in (a, b):
        pos, neg = s[y], s[~y]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        comps.append((psi.mean(axis=1), psi.mean(axis=0), psi.mean()))
    s10 = np.cov(np.vstack([comps[0][0], comps[1][0]]))
    s01 = np.cov(np.vstack([comps[0][1], comps[1][1]]))
    c = np.array([-1, 1])
    return comps[0][2], comps[1][2], c @ s10 @ c / y.sum() + c @ s01 @ c / (~y).sum()


def test_delong_matches_the_definition_and_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(4)
    y = (rng.random(300) < 0.4).astype(float)
    a = np.round(y + rng.normal(0, 1.0, size=300), 1)  # rounded: ties exercise midranks
    b = np.round(y + rng.normal(0, 0.7, size=300), 1)
    auc_a, auc_b, variance = delong(y, a, b)
    ref_a, ref_b, ref_var = _brute_force_delong(y, a, b)
    assert auc_a == pytest.approx(roc_auc_score(y, a)) == pytest.approx(ref_a)
    assert auc_b == pytest.approx(roc_auc_score(y, b)) == pytest.approx(ref_b)
    assert variance == pytest.approx(ref_var)


def test_auc_delta_ci_agrees_with_delong_and_detects_a_better_model():
    rng = np.random.default_rng(5)
    y = (rng.random(1500) < 0.5).astype(float)
    a = y + rng.normal(0, 1.2, size=y.size)
    b = y + rng.normal(0, 0.8, size=y.size)
    result = paired_auc_delta([y], [a], [b], n_boot=400)
    _, _, variance = delong(y, a, b)
    width = result.high - result.low
    assert width == pytest.approx(2 * 1.96 * np.sqrt(variance), rel=0.2)
    assert result.delta > 0 and result.low > 0 and result.p_value < 1e-4
    same = paired_auc_delta([y], [a], [a.copy()], n_boot=100)
    assert same.delta == 0 and same.p_value == 1.0


# -- per-unit values --------------------------------------------------------------------------
def test_ranking_rows_average_to_ranking_metrics():
    from fusionrec.metrics import ranking_metrics

    rng = np.random.default_rng(6)
    recommended = np.array([rng.permutation(50)[:10] for _ in range(40)])
    recommended[3, 7:] = -1  # a short, padded list
    relevant = [rng.choice(50, size=rng.integers(1, 6), replace=False) for _ in range(40)]
    rows = ranking_rows(recommended, relevant, 10)
    means = ranking_metrics(recommended, relevant, ks=(10,))
    assert rows["ndcg@10"].mean() == pytest.approx(means["ndcg@10"])
    assert rows["recall@10"].mean() == pytest.approx(means["recall@10"])
    # hand case: one relevant item at rank 2 -> ndcg 1/log2(3)
    single = ranking_rows(np.array([[5, 7, 9]]), [np.array([7])], 10)
    assert single["ndcg@10"][0] == pytest.approx(1 / np.log2(3))


@pytest.mark.parametrize("protocol", ["topk-random", "ctr-kgcn"])
def test_unit_values_reproduce_evaluate_and_round_trip(protocol, tmp_path):
    from fusionrec.data.protocols import make_split
    from fusionrec.data.synthetic import generate
    from fusionrec.evaluation.evaluate import evaluate
    from fusionrec.metrics import auc_score
    from fusionrec.experiments.units import unit_values
    from fusionrec.models.baselines.item_knn import ItemKNN

    split = make_split(generate(), protocol, seed=0)
    model = ItemKNN(k=20).fit(split)
    units = unit_values(model, split, "test", ks=(10, 20))
    metrics = evaluate(model, split, "test", ks=(10, 20))
    if protocol == "ctr-kgcn":
        assert units.task == "ctr" and len(units) == len(split.test)
        assert auc_score(units.arrays["label"], units.arrays["prob"]) == \
            pytest.approx(metrics["auc"])
    else:
        assert units.task == "topk" and len(units) == metrics["n_users_evaluated"]
        for key in ("ndcg@10", "recall@20"):
            assert units.arrays[key].mean() == pytest.approx(metrics[key])
    units.save(tmp_path)
    back = UnitValues.load(tmp_path)
    assert back.task == units.task and back.part == "test"
    for key, values in units.arrays.items():
        np.testing.assert_array_equal(back.arrays[key], values)


# -- the suite option and the ablation table --------------------------------------------------
def test_ablation_spec_validates(tmp_path):
    with pytest.raises(ConfigError, match="reference"):
        AblationSpec.from_raw({"metric": "auc"})
    with pytest.raises(ConfigError, match="unknown key"):
        AblationSpec.from_raw({"reference": "x", "bootstraps": 3})
    with pytest.raises(ConfigError, match="n_boot"):
        AblationSpec(reference="x", n_boot=5)
    suite = yaml.safe_load(SMOKE.read_text())
    suite["ablation"] = {"reference": "nope"}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    from fusionrec.experiments.suite import load_suite

    with pytest.raises(ConfigError, match="not an entry"):
        load_suite(path)


def _units(users, ndcg):
    return UnitValues("topk", "test", {"user": np.asarray(users), "ndcg@10": np.asarray(ndcg)})


def test_ablation_pairs_users_and_labels_rows():
    """Units are matched by user even when stored in another order; kinds follow sources."""
    all_sources = ["interactions", "item_text", "social", "kg"]
    records = [{"dataset": "d", "protocol": "p", "sources": s, "seed": 0, "metrics": {}}
               for s in (all_sources, ["interactions"], ["interactions", "item_text"],
                         ["interactions", "social", "kg"])]
    folders = ["all", "ids", "text", "no-text"]
    ref = _units([0, 1, 2, 3], [0.5, 0.4, 0.3, 0.2])
    stored = {"all": ref,
              "ids": _units([3, 2, 1, 0], [0.1, 0.2, 0.3, 0.4]),  # reversed order
              "text": _units([0, 1, 2, 3], [0.5, 0.4, 0.3, 0.2]),
              "no-text": _units([0, 1, 2], [0.5, 0.4, 0.3])}  # a user missing
    ablation = run_ablation(AblationSpec(reference="all", n_boot=100), records, folders,
                            lambda folder, seed: stored[folder])
    rows = {r.entry: r for r in ablation.rows}
    assert [r.entry for r in ablation.rows] == ["ids", "text", "no-text"]
    assert rows["ids"].kind == "add" and rows["ids"].label == "only interactions"
    assert rows["text"].label == "+item_text"
    # aligned by user: ids scores 0.4, 0.3, 0.2, 0.1 against 0.5, 0.4, 0.3, 0.2
    assert rows["ids"].result.delta == pytest.approx(-0.1)
    assert rows["text"].result.delta == 0
    assert rows["no-text"].kind == "leave-one-out" and rows["no-text"].label == "−item_text"
    assert rows["no-text"].result is None and "same units" in rows["no-text"].note
    assert ablation.reference_mean == pytest.approx(0.35) and ablation.metric == "ndcg@10"


@pytest.fixture(scope="module")
def smoke_ablation(tmp_path_factory):
    root = tmp_path_factory.mktemp("ablation")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FUSIONREC_CACHE", str(root / "embeddings"))
        code = main(["benchmark", "-c", str(SMOKE), "--out", str(root / "out"),
                     "--set", "trainer.epochs=2", "--set", "trainer.num_threads=1",
                     "--no-progress"])
    return code, root / "out"


def test_smoke_ablation_suite_writes_units_table_and_plots(smoke_ablation):
    code, out = smoke_ablation
    assert code == 0
    records = json.loads((out / "results.json").read_text())
    assert len(records) == 10 and not any("error" in r for r in records)
    for run in (out / "runs").glob("*/seed-*"):
        assert (run / "test_units.safetensors").is_file()
    ablation = json.loads((out / "ablation.json").read_text())
    assert ablation["reference"] == "all-sources" and ablation["metric"] == "ndcg@10"
    rows = {r["entry"]: r for r in ablation["rows"]}
    assert set(rows) == {"interactions", "add-text", "no-text", "no-social"}
    assert rows["no-social"]["kind"] == "leave-one-out" and rows["add-text"]["kind"] == "add"
    ref = [r["metrics"]["ndcg@10"] for r in records if r["model"] == "all-sources"]
    for name, row in rows.items():
        mine = [r["metrics"]["ndcg@10"] for r in records if r["model"] == name]
        # the paired delta of per-user values equals the difference of the reported means
        assert row["result"]["delta"] == pytest.approx(np.mean(mine) - np.mean(ref), abs=1e-9)
        assert row["result"]["low"] <= row["result"]["delta"] <= row["result"]["high"]
        assert 0 < row["result"]["p_value"] <= 1 and row["result"]["n_seeds"] == 2
    report = (out / "report.md").read_text()
    assert "### Source ablation — synthetic, `topk-random`, ndcg@10" in report
    assert "| no-social | leave-one-out (−social) |" in report
    for name in ("metrics_synthetic-topk-random.png", "curves_synthetic-topk-random.png",
                 "ablation_synthetic-topk-random.png"):
        assert f"](plots/{name})" in report
        assert (out / "plots" / name).read_bytes()[:8] == PNG


def test_ctr_ablation_uses_auc_over_rows(tmp_path):
    suite = {"name": "ctr-ablation", "seeds": [0], "metrics": ["auc"],
             "ablation": {"reference": "all", "n_boot": 100},
             "entries": [{"name": "all", "config": str(REPO / "configs" / "quickstart.yaml"),
                          "set": {"protocol.name": "ctr-kgcn", "encoder.model": "hashing:16",
                                  "trainer.epochs": 2, "model.params.embedding_dim": 8}},
                         {"name": "ids", "config": str(REPO / "configs" / "quickstart.yaml"),
                          "set": {"protocol.name": "ctr-kgcn", "encoder.model": "hashing:16",
                                  "trainer.epochs": 2, "model.params.embedding_dim": 8,
                                  "model.params.sources": ["interactions"]}}]}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FUSIONREC_CACHE", str(tmp_path / "embeddings"))
        assert main(["benchmark", "-c", str(path), "--out", str(tmp_path / "out"),
                     "--set", "trainer.num_threads=1", "--no-progress"]) == 0
    ablation = json.loads((tmp_path / "out" / "ablation.json").read_text())
    records = json.loads((tmp_path / "out" / "results.json").read_text())
    auc = {r["model"]: r["metrics"]["auc"] for r in records}
    (row,) = ablation["rows"]
    assert ablation["metric"] == "auc" and row["result"]["test"] == "delong"
    assert row["result"]["delta"] == pytest.approx(auc["ids"] - auc["all"])
    assert row["mean"] == pytest.approx(auc["ids"])
    assert "DeLong p-value" in (tmp_path / "out" / "report.md").read_text()
