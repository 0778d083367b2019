"""lm-zero-shot (the untrained LM as a recommender) and ``fusionrec evaluate RUN --zero-shot``.
The hashing encoder stands in for MiniLM; every embedding cache lives in a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fusionrec.cli.main import main
from fusionrec.data.protocols import make_split
from fusionrec.data.synthetic import generate
from fusionrec.encoders.config import EncoderConfig
from fusionrec.encoders.features import text_features
from fusionrec.evaluation.evaluate import evaluate
from fusionrec.models.baselines.lm_zero_shot import LMZeroShot

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONREC_CACHE", str(tmp_path / "embeddings"))


@pytest.fixture(scope="module")
def world():
    return generate(n_users=60, n_items=40, n_interactions=900, seed=5)


def _unit(matrix):
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def test_scores_are_cosines_of_leak_free_text(world, tmp_path):
    split = make_split(world, "topk-random", seed=1)
    encoder = EncoderConfig(model="hashing", cache_dir=str(tmp_path / "c"))
    model = LMZeroShot(encoder=encoder).fit(split)
    text = text_features(split.features, encoder, progress=False)
    users, items = np.array([0, 3, 7, 7]), np.array([1, 2, 5, 9])
    expected = np.sum(_unit(text.user[users]) * _unit(text.item[items]), axis=1)
    assert np.allclose(model.score(users, items), expected, atol=1e-5)
    # user texts come from the training history only: the full dataset's would differ
    full = text_features(world, encoder, progress=False)
    assert np.allclose(model.user_vectors_, _unit(text.user), atol=1e-5)
    assert not np.allclose(model.user_vectors_, _unit(full.user), atol=1e-3)
    assert model.sources_ == split.features.sources
    ranked, scores = model.recommend(np.array([0, 1]), k=5)
    for row, user in enumerate((0, 1)):
        assert not set(ranked[row]) & set(model.seen_.items_of(user))
        assert np.all(np.diff(scores[row]) <= 1e-7)


def test_ctr_calibration_keeps_auc_of_the_raw_cosine(world, tmp_path):
    split = make_split(world, "ctr-kgcn", seed=1)
    encoder = {"model": "hashing", "cache_dir": str(tmp_path / "c")}
    calibrated = LMZeroShot(encoder=encoder).fit(split)
    raw = LMZeroShot(encoder=encoder, calibrate=False).fit(split)
    test = split.test
    cosine = raw.score(test.user, test.item)
    assert evaluate(calibrated, split)["auc"] == pytest.approx(roc_auc_score(test.label, cosine))
    a, b = calibrated.logit_
    assert a > 0 and np.allclose(calibrated.score(test.user, test.item), a * cosine + b,
                                 atol=1e-5)


def test_save_load_round_trip(world, tmp_path):
    split = make_split(world, "ctr-kgcn", seed=1)
    model = LMZeroShot(encoder={"model": "hashing:16"}).fit(split)
    model.save(tmp_path / "m")
    again = LMZeroShot.load(tmp_path / "m")
    assert again.encoder == model.encoder and again.sources_ == model.sources_
    users, items = split.test.user[:20], split.test.item[:20]
    assert np.allclose(again.score(users, items), model.score(users, items))


def test_evaluate_zero_shot_reports_the_gain(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "-c", str(REPO / "configs" / "quickstart-bprmf.yaml"), "--out", str(run),
                 "--set", "trainer.epochs=2", "--set", "model.params.embedding_dim=8",
                 "--set", "encoder.model=hashing", "--no-progress"]) == 0
    out = tmp_path / "zs.json"
    assert main(["evaluate", str(run), "--zero-shot", "--json", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "zero-shot" in printed and "gain" in printed
    payload = json.loads(out.read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    assert payload["metrics"] == pytest.approx(manifest["metrics"]["test"])
    assert payload["encoder"] == "hashing"
    for name in ("ndcg@10", "recall@20"):
        assert payload["gain"][name] == pytest.approx(payload["metrics"][name]
                                                      - payload["zero_shot"][name])
    # the zero-shot numbers are those of lm-zero-shot fitted on the run's own split
    from fusionrec.training import artifacts
    from fusionrec.training.run import load_run_split

    config, manifest, _ = artifacts.open_run(run)
    _, split = load_run_split(run, config, manifest)
    direct = evaluate(LMZeroShot(encoder={"model": "hashing"}).fit(split), split)
    assert payload["zero_shot"] == pytest.approx(direct)
    assert main(["evaluate", str(run), "--zero-shot", "--protocol", "ctr-kgcn"]) == 2
