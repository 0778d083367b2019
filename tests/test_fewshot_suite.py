"""Few-shot suites through ``fusionrec benchmark``: ``shots`` lists and ``shots: 0`` entries,
the records' labels, the zero-shot model, the trainer seed reaching the cross-encoder, and the
report's gain over the untrained LM. Runs on the synthetic world with a tiny random BERT."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from fusionrec.cli.main import main
from fusionrec.config import ConfigError, RunConfig
from fusionrec.experiments.report import render_report
from fusionrec.experiments.suite import Suite, load_suite

REPO = Path(__file__).resolve().parents[1]
FEWSHOT = {"name": "fewshot-tallrec", "seed": 0, "params": {"shots": 8, "n_records": 400}}


def _cross_encoder(tiny_bert: Path) -> dict:
    return {"model": str(tiny_bert), "feature_model": "hashing:16", "mode": "lora",
            "max_length": 64, "item_budget": 24, "epochs": 1, "batch_size": 8,
            "valid_rows": 16, "precision": "fp32", "progress": False, "num_threads": 1}


def _suite(folder: Path, tiny_bert: Path) -> Path:
    config = {"data": {"preset": "synthetic"}, "protocol": FEWSHOT,
              "model": {"name": "cross-encoder", "params": _cross_encoder(tiny_bert)},
              "evaluation": {"ks": [10], "threshold": 0.5}}
    (folder / "fewshot.yaml").write_text(yaml.safe_dump(config))
    suite = {"name": "tiny-fewshot", "seeds": [0, 1], "metrics": ["auc"], "entries": [
        {"name": "cross-encoder", "config": "fewshot.yaml", "shots": [4, 8]},
        {"name": "cross-encoder-zero-shot", "config": "fewshot.yaml", "shots": 0,
         "seeds": [0], "set": {"model.name": "cross-encoder-zero-shot"}},
        {"name": "history-positivity", "config": "fewshot.yaml", "shots": 0, "seeds": [0],
         "set": {"model.name": "history-positivity", "model.params": {}}}]}
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_bert):
    root = tmp_path_factory.mktemp("fewshot-suite")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FUSIONREC_CACHE", str(root / "cache"))
        code = main(["benchmark", "-c", str(_suite(root, tiny_bert)), "--out",
                     str(root / "out"), "--set", "trainer.epochs=1", "--no-progress"])
    return code, root / "out"


def test_records_carry_shots_model_dataset_and_protocol(run):
    code, out = run
    assert code == 0
    records = json.loads((out / "results.json").read_text())
    assert [r.get("error") for r in records] == [None] * 6
    got = sorted((r["model"], r["shots"], r["seed"]) for r in records)
    assert got == [("cross-encoder", 4, 0), ("cross-encoder", 4, 1), ("cross-encoder", 8, 0),
                   ("cross-encoder", 8, 1), ("cross-encoder-zero-shot", 0, 0),
                   ("history-positivity", 0, 0)]
    for record in records:
        assert record["dataset"] == "synthetic" and record["protocol"] == "fewshot-tallrec"
        assert 0.0 <= record["metrics"]["auc"] <= 1.0
        folder = {"cross-encoder": f"cross-encoder-{record['shots']}shot"}.get(
            record["model"], record["model"])
        split = json.loads((out / "runs" / folder / f"seed-{record['seed']}" /
                            "split.json").read_text())
        assert split["rows"]["train"] == record["shots"]   # only the k records train
        assert split["params"]["shots"] == record["shots"]


def test_each_seed_reaches_the_cross_encoder_and_draws_other_shots(run):
    _, out = run
    runs = out / "runs" / "cross-encoder-8shot"
    params = [json.loads((runs / f"seed-{s}" / "model.json").read_text())["params"]
              for s in (0, 1)]
    assert [p["seed"] for p in params] == [0, 1]
    import pyarrow.parquet as pq

    trains = [pq.read_table(runs / f"seed-{s}" / "split.parquet").to_pydict() for s in (0, 1)]
    picked = [{(u, i) for p, u, i in zip(t["part"], t["user"], t["item"]) if p == "train"}
              for t in trains]
    assert picked[0] != picked[1]


def test_report_shows_the_gain_over_the_zero_shot_row(run):
    _, out = run
    report = (out / "report.md").read_text()
    assert "Gain over the untrained LM (`cross-encoder-zero-shot`, auc)" in report
    assert "| cross-encoder | " in report and "| history-positivity | " in report
    # each shots row of one model is named with its shots, not twice with the same label
    assert "cross-encoder (4 shots): " in report and "cross-encoder (8 shots): " in report


def test_only_selects_every_row_of_a_shots_list(tmp_path, tiny_bert):
    from fusionrec.experiments.benchmark import run_suite

    suite = load_suite(_suite(tmp_path, tiny_bert))
    with pytest.raises(ConfigError, match="unknown entries"):
        run_suite(suite, tmp_path / "out", only=["nope"], progress=False)
    picked = [e.folder for e in suite.entries if e.name == "cross-encoder"]
    assert picked == ["cross-encoder-4shot", "cross-encoder-8shot"]


def test_gain_falls_back_to_the_zero_shot_row_with_zero_shots():
    def record(model, shots, auc):
        return {"dataset": "d", "protocol": "p", "model": model, "sources": [], "shots": shots,
                "seed": 0, "metrics": {"auc": auc}, "wall_seconds": 1.0}

    report = render_report([record("cross-encoder-zero-shot", 0, 0.6),
                            record("cross-encoder", 16, 0.7), record("cross-encoder", 64, 0.75)],
                           Suite("s", ()))
    assert "cross-encoder (16 shots): +0.1000" in report
    assert "cross-encoder (64 shots): +0.1500" in report


@pytest.mark.parametrize("bad", [-1, True, [], [4, 4], "8"])
def test_bad_shots_are_refused(tmp_path, bad):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(
        {"entries": [{"config": "configs/quickstart.yaml", "shots": bad}]}))
    with pytest.raises(ConfigError, match="shots must be"):
        load_suite(tmp_path / "s.yaml")


def test_shipped_fewshot_suites_load_with_the_expected_rows():
    for name, preset in (("ml100k-fewshot", "ml-100k"), ("lastfm-fewshot", "lastfm-kg")):
        suite = load_suite(REPO / "benchmarks" / f"{name}.yaml")
        rows = {(e.name, e.shots) for e in suite.entries}
        # Last.FM's config does not augment, so it has no no-augment row
        # rows are named for what they are: the cross-encoder model is a side-feature head
        # plus a LoRA-tuned MiniLM
        trained = ("side-head+lora-minilm", "side-head-only") + (
            ("side-head+lora-minilm-no-augment",) if name == "ml100k-fewshot" else ())
        assert rows == {(n, k) for n in trained for k in (16, 64, 256)} | {
            ("cross-encoder-zero-shot", 0), ("history-positivity", 0)}
        for entry in suite.entries:
            from fusionrec.config import load_config

            config = load_config(entry.config, entry.run_overrides(entry.seeds[-1]))
            assert config.data.preset == preset
            assert config.protocol.params["shots"] == entry.shots
            if entry.name in trained:
                assert config.model.name == "cross-encoder" and entry.seeds == (0, 1, 2, 3, 4)
            else:
                assert config.model.name == entry.name
        # the attribution rows differ from the full model in exactly the part they leave out
        by_name = {e.name: e for e in suite.entries if e.shots == 64}
        full, no_lm, *no_aug = (load_config(by_name[n].config, by_name[n].run_overrides(0)).model
                                for n in trained)
        assert (full.params.get("mode"), no_lm.params["mode"]) == ("lora", "none")
        for row in no_aug:
            assert (full.params.get("augment"), row.params["augment"]) == (True, False)


def test_trainer_seed_reaches_models_that_train_themselves():
    from fusionrec.training.run import build_model

    def built(model: dict, seed: int):
        return build_model(RunConfig.from_dict({"model": model, "trainer": {"seed": seed}}))

    assert built({"name": "cross-encoder"}, 3).config.seed == 3
    assert built({"name": "cross-encoder", "params": {"seed": 5}}, 3).config.seed == 5
    assert built({"name": "cross-encoder-zero-shot"}, 2).config.seed == 2
    assert built({"name": "bpr-mf"}, 4).trainer.seed == 4          # through its trainer
    assert built({"name": "history-positivity"}, 4).get_params() == {"history_size": 10,
                                                                     "prior": 0.0}


@pytest.fixture(scope="module")
def zero_shot_split():
    from fusionrec.data.protocols import make_split
    from fusionrec.data.synthetic import generate

    return make_split(generate(n_users=40, n_items=30, n_interactions=500, seed=3),
                      "fewshot-tallrec", seed=0, shots=0, n_records=150)


def _zero_shot(method, split, tmp_path, monkeypatch):
    from fusionrec.models.cross_encoder.zero_shot_model import CrossEncoderZeroShot

    monkeypatch.setenv("FUSIONREC_CACHE", str(tmp_path / "cache"))
    return CrossEncoderZeroShot(method, feature_model="hashing:32", progress=False).fit(split)


def test_history_similarity_is_the_signed_mean_cosine_by_hand(zero_shot_split, tmp_path,
                                                              monkeypatch):
    """Rows written by hand: candidate c, history items a (liked) and b (disliked). The score
    is sum(cos * (+1 liked / -1 disliked)) / n over the history: (cos(c,a) - cos(c,b)) / 2,
    its negation when the labels swap, cos(c,a) for a one-item history, 0 for none."""
    from fusionrec.data.split import Pairs

    model = _zero_shot("history-similarity", zero_shot_split, tmp_path, monkeypatch)
    vectors = model.item_vectors_.astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    c, a, b = 5, 11, 17
    cos = lambda x, y: float(vectors[x] @ vectors[y])  # noqa: E731 - unit vectors
    history = np.array([[a, b], [a, b], [-1, a], [-1, -1]])
    labels = np.array([[1, 0], [0, 1], [0, 1], [0, 0]], dtype=np.float32)
    rows = Pairs(np.zeros(4, np.int64), np.full(4, c), np.ones(4, np.float32), history, labels)
    expected = [(cos(c, a) - cos(c, b)) / 2, (cos(c, b) - cos(c, a)) / 2, cos(c, a), 0.0]
    assert abs(expected[0]) > 1e-3  # the two items differ, so the case is not trivially 0
    np.testing.assert_allclose(model.score_pairs(rows), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["history-similarity", "prompt-cosine"])
def test_zero_shot_scores_ignore_the_rows_own_label(method, zero_shot_split, tmp_path,
                                                    monkeypatch):
    """Zero-shot means no label is read: flipping every test label changes no score, while the
    history's labels do move them; scores are cosines (in [-1, 1]) and survive save/load."""
    from dataclasses import replace

    from fusionrec.models.cross_encoder.zero_shot_model import CrossEncoderZeroShot

    model = _zero_shot(method, zero_shot_split, tmp_path, monkeypatch)
    test = zero_shot_split.test
    scores = model.score_pairs(test)
    assert np.std(scores) > 0 and np.all(np.abs(scores) <= 1 + 1e-6)
    np.testing.assert_array_equal(model.score_pairs(replace(test, label=1 - test.label)), scores)
    flipped = replace(test, history_labels=1 - test.history_labels)
    assert not np.allclose(model.score_pairs(flipped), scores)
    model.save(tmp_path / "m")
    np.testing.assert_array_equal(CrossEncoderZeroShot.load(tmp_path / "m").score_pairs(test),
                                  scores)
