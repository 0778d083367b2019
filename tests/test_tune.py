"""``fusionrec tune``: search-space validation, the study end to end on synthetic data, the
best config round trip through ``fusionrec train``, pruning, and that the test part is never
scored."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from fusionrec.cli.main import main
from fusionrec.config import ConfigError, load_config
from fusionrec.evaluation.evaluate import evaluate
from fusionrec.training.tune_space import Param, tune_settings

REPO = Path(__file__).resolve().parents[1]
BPR = REPO / "configs" / "quickstart-bprmf.yaml"


def _config(tmp_path: Path, tune: dict, **trainer) -> Path:
    raw = yaml.safe_load(BPR.read_text())
    raw["trainer"].update({"epochs": 3, "num_threads": 1, **trainer})
    raw["model"]["params"]["embedding_dim"] = 8
    raw["tune"] = tune
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# -- the search space -------------------------------------------------------------------------
def test_params_are_validated_and_typed_from_their_values():
    assert Param.from_raw("trainer.lr", {"low": 1e-4, "high": 1e-1, "log": True}).kind == "float"
    assert Param.from_raw("model.params.layers", {"low": 1, "high": 3}).kind == "int"
    assert Param.from_raw("model.params.embedding_dim", [8, 16]).choices == (8, 16)
    with pytest.raises(ConfigError, match="only"):
        Param.from_raw("protocol.seed", {"low": 0, "high": 3})  # the split must stay fixed
    with pytest.raises(ConfigError, match="low < high"):
        Param.from_raw("trainer.lr", {"low": 0.1, "high": 0.01})
    with pytest.raises(ConfigError, match="log scale"):
        Param.from_raw("trainer.weight_decay", {"low": 0.0, "high": 1.0, "log": True})
    with pytest.raises(ConfigError, match="unknown key"):
        Param.from_raw("trainer.lr", {"min": 0.1, "max": 1})


def test_default_spaces_per_model_and_unknown_settings():
    fusion = {p.key for p in tune_settings(None, "fusion").space}
    assert {"trainer.lr", "trainer.weight_decay", "model.params.embedding_dim",
            "model.params.layers", "model.params.source_dropout"} <= fusion
    assert "trainer.dropout" in {p.key for p in tune_settings({}, "bpr-mf").space}
    with pytest.raises(ConfigError, match="no default search space"):
        tune_settings(None, "popularity")
    with pytest.raises(ConfigError, match="unknown key"):
        tune_settings({"n_trials": 3}, "bpr-mf")
    with pytest.raises(ConfigError, match="pruner"):
        tune_settings({"pruner": "hyperband"}, "bpr-mf")


def test_a_config_with_a_tune_section_still_trains(tmp_path):
    config = load_config(_config(tmp_path, {"trials": 2}))
    assert config.model.name == "bpr-mf" and "tune" not in config.to_dict()


# -- the study ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    space = {"trainer.lr": {"low": 1e-3, "high": 5e-2, "log": True},
             "model.params.embedding_dim": [8, 16],
             "trainer.weight_decay": {"low": 0.0, "high": 1e-3}}
    path = _config(root, {"space": space, "trials": 4, "pruner": "none"})
    code = main(["tune", "-c", str(path), "--out", str(root / "out")])
    return code, root / "out", path


def test_tune_writes_best_config_and_trial_tables(study):
    code, out, _ = study
    assert code == 0
    trials = json.loads((out / "trials.json").read_text())
    assert len(trials) == 4 and all(t["state"] == "COMPLETE" for t in trials)
    for t in trials:
        assert 1e-3 <= t["params"]["trainer.lr"] <= 5e-2
        assert t["params"]["model.params.embedding_dim"] in (8, 16)
        assert 0 < t["value"] <= 1 and t["epochs_run"] == 3
    with (out / "trials.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["value"]) for r in rows] == pytest.approx([t["value"] for t in trials])
    summary = json.loads((out / "summary.json").read_text())
    best = max(trials, key=lambda t: t["value"])
    assert summary["part"] == "valid" and summary["monitor"] == "ndcg@10"
    assert summary["best_trial"] == best["number"]
    assert summary["best_value"] == pytest.approx(best["value"])
    config = load_config(out / "best.yaml")
    assert config.trainer.lr == pytest.approx(best["params"]["trainer.lr"])
    assert config.model.params["embedding_dim"] == best["params"]["model.params.embedding_dim"]
    assert config.trainer.epochs == 3 and config.model.name == "bpr-mf"


def test_best_config_trains_and_reproduces_the_best_valid_value(study, tmp_path):
    """Trials and `fusionrec train` share seeds and split: the best trial's valid value is what
    training the best config gives on valid."""
    _, out, _ = study
    run = tmp_path / "run"
    assert main(["train", "-c", str(out / "best.yaml"), "--out", str(run),
                 "--no-progress"]) == 0
    manifest = json.loads((run / "manifest.json").read_text())
    best = json.loads((out / "summary.json").read_text())["best_value"]
    assert manifest["metrics"]["valid"]["ndcg@10"] == pytest.approx(best, rel=1e-6)


def test_tune_refuses_a_used_out_folder(study):
    _, out, path = study
    assert main(["tune", "-c", str(path), "--out", str(out), "--trials", "1"]) == 2


def test_tune_never_scores_the_test_part(tmp_path):
    from fusionrec.training.tune import tune

    parts = []

    def spy(model, split, part="test", *args, **kwargs):
        parts.append(part)
        return evaluate(model, split, part, *args, **kwargs)

    path = _config(tmp_path, {"space": {"trainer.lr": [0.01, 0.02]}, "pruner": "none"})
    result = tune(path, tmp_path / "out", evaluate=spy, trials=2)
    assert parts and set(parts) == {"valid"}
    assert len(result.trials) == 2 and result.monitor == "ndcg@10"


def test_median_pruner_stops_hopeless_trials(tmp_path):
    """A learning rate too small to move the embeddings falls below the median curve."""
    from fusionrec.training.tune import tune

    space = {"trainer.lr": [0.05, 1e-7]}
    path = _config(tmp_path, {"space": space, "pruner": "median", "startup_trials": 1,
                              "warmup_epochs": 0}, epochs=4, patience=0, lr=0.05)
    result = tune(path, tmp_path / "out", evaluate=evaluate, trials=8, seed=1)
    # trial 0 is the config's own lr (the baseline), which sets the median curve
    assert result.trials[0]["params"]["trainer.lr"] == 0.05
    states = {(t["state"], t["params"]["trainer.lr"]) for t in result.trials}
    assert ("PRUNED", 1e-7) in states
    assert all(lr == 1e-7 for state, lr in states if state == "PRUNED")
    assert result.best_params["trainer.lr"] == 0.05
    pruned = [t for t in result.trials if t["state"] == "PRUNED"]
    assert all(t["value"] is None and t["epochs_run"] < 4 for t in pruned)


def test_shipped_tune_section_runs_and_encodes_texts_once(tmp_path, monkeypatch):
    """configs/scenario-news.yaml's space on the fusion model: trials share one encoding."""
    import fusionrec.models.fusion.build as build
    from fusionrec.training.tune import tune

    calls = []
    real = build.load_text_features

    def counting(features, encoder):
        calls.append(encoder.model)
        return real(features, encoder)

    monkeypatch.setattr(build, "load_text_features", counting)
    monkeypatch.setenv("FUSIONREC_CACHE", str(tmp_path / "embeddings"))
    result = tune(REPO / "configs" / "scenario-news.yaml", tmp_path / "out", evaluate=evaluate,
                  trials=3, overrides=["encoder.model=hashing:16", "tune.epochs=1",
                             "trainer.num_threads=1"])
    assert calls == ["hashing:16"]
    assert len(result.trials) == 3 and result.monitor == "ndcg@10"
    assert set(result.best_params) == {"trainer.lr", "trainer.weight_decay",
                                       "model.params.embedding_dim", "model.params.layers",
                                       "model.params.source_dropout", "model.params.text_user"}
    assert result.best_config.trainer.epochs == 40  # the config's own, not the search's 1


def test_trials_share_frozen_text_features_through_the_model_contract(monkeypatch):
    """Tuning asks a model's declared ``frozen_text_encoder`` (no probing): fusion trials with
    the same frozen encoder get one encoding; a model that reads no item text, a fusion model
    without that source, or one that fine-tunes its LM is left to encode for itself."""
    from fusionrec.data.protocols import make_split
    from fusionrec.data.synthetic import generate
    from fusionrec.models.baselines.bpr_mf import BPRMF
    from fusionrec.models.fusion import build
    from fusionrec.models.fusion.recommender import FusionRecommender
    from fusionrec.training.tune import _Objective

    split = make_split(generate(n_users=30, n_items=20, n_interactions=300, seed=3),
                       "topk-random", seed=0)
    encoded = []
    real = build.load_text_features
    monkeypatch.setattr(build, "load_text_features",
                        lambda features, encoder: encoded.append(encoder) or
                        real(features, encoder))
    objective = _Objective({}, None, split, "ndcg@10", progress=False, evaluate=evaluate)
    first, second = (objective._share_text_features(
        FusionRecommender(encoder={"model": "hashing:16"})) for _ in range(2))
    assert len(encoded) == 1 and first.text_features is second.text_features is not None
    for model in (BPRMF(), FusionRecommender(encoder={"model": "hashing:16"},
                                             sources=["interactions", "kg"]),
                  FusionRecommender(encoder={"model": "all-MiniLM-L6-v2"}, lm_mode="full")):
        assert objective._share_text_features(model) is model
        assert getattr(model, "text_features", None) is None
    assert len(encoded) == 1
