"""Run folders: complete, checksummed, reloadable, and refusing tampered files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fusionrec.config import RunConfig, load_config
from fusionrec.training import artifacts
from fusionrec.evaluation.runs import evaluate_run
from fusionrec.evaluation.runs import train_run
from fusionrec.training.run import load_run_split


def _config(**trainer) -> RunConfig:
    return RunConfig.from_dict({
        "model": {"name": "bpr-mf", "params": {"embedding_dim": 8}},
        "trainer": {"epochs": 2, "lr": 0.02, "batch_size": 512, "num_threads": 1, **trainer},
        "evaluation": {"ks": [5, 10]},
    })


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    result = train_run(_config(), folder, progress=False)
    assert result.epochs_run == 2
    return folder


def test_run_folder_holds_every_artefact(run_dir):
    for name in artifacts.ARTEFACTS + ("manifest.json", "metrics.jsonl", "learning_curve.png"):
        assert (run_dir / name).is_file(), name
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert set(manifest["files"]) == set(artifacts.ARTEFACTS)
    for name, digest in manifest["files"].items():
        assert artifacts.file_sha256(run_dir / name) == digest
    assert manifest["packages"]["torch"].startswith("2.13.0")
    assert manifest["data"]["name"] == "synthetic" and len(manifest["data"]["fingerprint"]) == 64
    assert "ndcg@10" in manifest["metrics"]["test"] and "ndcg@5" in manifest["metrics"]["valid"]
    users = json.loads((run_dir / "users.json").read_text())
    assert users[:2] == ["u0", "u1"]
    assert load_config(run_dir / "config.yaml") == _config()


def test_open_run_restores_the_model(run_dir):
    config, manifest, model = artifacts.open_run(run_dir)
    assert config.model.name == model.name == "bpr-mf"
    dataset, split = load_run_split(run_dir, config, manifest)
    again = evaluate_run(run_dir)
    assert again["metrics"] == pytest.approx(manifest["metrics"]["test"], nan_ok=True)
    assert again["protocol"] == "topk-random" and again["wall_seconds"] >= 0
    assert model.score(split.test.user, split.test.item).shape == (len(split.test),)


@pytest.mark.parametrize("name", ["model.safetensors", "config.yaml", "split.parquet",
                                  "items.json"])
def test_tampered_files_are_refused(run_dir, tmp_path, name):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    path = copy / name
    data = bytearray(path.read_bytes())
    data[-2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(artifacts.RunError, match=f"{name} was modified"):
        artifacts.open_run(copy)


def test_missing_or_unfinished_runs_are_explained(tmp_path):
    with pytest.raises(artifacts.RunError, match="not a finished run folder"):
        artifacts.verify_run(tmp_path)


def test_changed_dataset_is_refused(run_dir, monkeypatch):
    from fusionrec.data import synthetic
    from fusionrec.training import run as run_module

    config, manifest, _ = artifacts.open_run(run_dir)
    real = synthetic.generate
    monkeypatch.setattr(synthetic, "generate", lambda: real(seed=1))
    with pytest.raises(artifacts.RunError, match="differs from the one this run was trained"):
        run_module.load_run_split(run_dir, config, manifest)


def test_dataset_fingerprint_tracks_interactions():
    from fusionrec.data.synthetic import generate

    a, b = generate(seed=0), generate(seed=0)
    assert artifacts.dataset_fingerprint(a) == artifacts.dataset_fingerprint(b)
    changed = a.replace(interactions=a.interactions.take(np.arange(len(a.interactions) - 1)))
    assert artifacts.dataset_fingerprint(changed) != artifacts.dataset_fingerprint(a)


def test_reloading_uses_the_training_data_root_unless_told_otherwise(monkeypatch):
    from fusionrec.training.run import run_data_dir

    manifest = {"data": {"root": "/data/used/for/training"}}
    monkeypatch.delenv("FUSIONREC_DATA", raising=False)
    assert run_data_dir(_config(), manifest, None) == "/data/used/for/training"
    assert run_data_dir(_config(), manifest, "/explicit") == "/explicit"
    monkeypatch.setenv("FUSIONREC_DATA", "/from/env")
    assert run_data_dir(_config(), manifest, None) is None  # the loader reads the env var
