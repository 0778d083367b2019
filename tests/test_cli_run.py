"""``fusionrec train | evaluate | recommend | quickstart`` end to end through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from fusionrec.cli.main import main

REPO = Path(__file__).resolve().parents[1]
FAST = ["--set", "trainer.epochs=2", "--set", "model.params.embedding_dim=8",
        "--set", "trainer.num_threads=1", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "-c", str(REPO / "configs" / "quickstart-bprmf.yaml"), "--out", str(out),
                 *FAST]) == 0
    return out


def test_train_writes_a_run_folder(trained, capsys):
    assert (trained / "manifest.json").is_file() and (trained / "model.safetensors").is_file()
    config = (trained / "config.yaml").read_text()
    assert "epochs: 2" in config and "embedding_dim: 8" in config


def test_evaluate_writes_json(trained, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    assert main(["evaluate", str(trained), "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["protocol"] == "topk-random" and payload["wall_seconds"] >= 0
    manifest = json.loads((trained / "manifest.json").read_text())
    assert payload["metrics"] == pytest.approx(manifest["metrics"]["test"])
    assert "ndcg@10" in capsys.readouterr().out
    assert main(["evaluate", str(trained), "--part", "valid", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["metrics"] == pytest.approx(manifest["metrics"]["valid"])


def test_evaluate_under_another_protocol(trained, tmp_path):
    """The AUC in the file equals scikit-learn's AUC of the saved model's scores on an
    independently rebuilt ctr-kgcn split of the same data."""
    from sklearn.metrics import roc_auc_score

    from fusionrec.data.load import load_dataset
    from fusionrec.data.protocols import make_split
    from fusionrec.training.artifacts import open_run

    out = tmp_path / "ctr.json"
    assert main(["evaluate", str(trained), "--protocol", "ctr-kgcn", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    config, _, model = open_run(trained)
    dataset, _ = load_dataset(config.data.preset)
    test = make_split(dataset, "ctr-kgcn", config.protocol.seed).test
    assert set(np.unique(test.label)) == {0.0, 1.0}  # a real CTR test part: both classes
    expected = roc_auc_score(test.label, model.score(test.user, test.item))
    assert payload["protocol"] == "ctr-kgcn"
    assert payload["metrics"]["auc"] == pytest.approx(expected, abs=1e-6)
    assert expected > 0.6  # and the trained model ranks likes above non-likes


def test_recommend_prints_ids_and_titles(trained, capsys):
    assert main(["recommend", str(trained), "--user", "u3", "-k", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].startswith("  1. i")
    assert "No. " in lines[0]  # the synthetic item title


def test_user_errors_are_one_line(trained, tmp_path, capsys):
    assert main(["recommend", str(trained), "--user", "nobody"]) == 2
    assert main(["train", "-c", str(REPO / "configs" / "quickstart-bprmf.yaml"), "--out",
                 str(tmp_path / "x"), "--set", "trainer.lr=-1"]) == 2
    assert main(["train", "-c", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "y")]) == 2
    assert main(["train", "-c", str(REPO / "configs" / "quickstart-bprmf.yaml"), "--out",
                 str(trained)]) == 2  # already holds a run
    assert main(["evaluate", str(tmp_path)]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 5 and all(line.startswith("fusionrec: error: ") for line in errors)
    assert "trainer.lr" in errors[1] and "already holds files" in errors[3]


def test_train_resume_continues_a_run(tmp_path, capsys):
    out = tmp_path / "run"
    config = str(REPO / "configs" / "quickstart-bprmf.yaml")
    assert main(["train", "-c", config, "--out", str(out), *FAST]) == 0
    first = json.loads((out / "manifest.json").read_text())
    # Resume with a larger epoch budget continues from epoch 2 instead of starting over.
    assert main(["train", "--out", str(out), "--resume", "--set", "trainer.epochs=3",
                 "--no-progress"]) == 0
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]
    # Resuming is exact: 2 epochs + 1 resumed equals 3 uninterrupted epochs, weight for weight.
    straight = tmp_path / "straight"
    assert main(["train", "-c", config, "--out", str(straight), *FAST,
                 "--set", "trainer.epochs=3"]) == 0
    resumed = json.loads((out / "manifest.json").read_text())["metrics"]
    assert resumed == json.loads((straight / "manifest.json").read_text())["metrics"]
    assert resumed != first["metrics"]  # and the third epoch did train
    a, b = (load_file(str(folder / "model.safetensors")) for folder in (out, straight))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert main(["train", "-c", str(REPO / "configs" / "quickstart-popularity.yaml"),
                 "--out", str(out), "--resume"]) == 2
    assert "differs" in capsys.readouterr().err


def test_quickstart_trains_the_fusion_model_and_beats_popularity(tmp_path, capsys):
    import json

    assert main(["quickstart", "--out", str(tmp_path / "q"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "training fusion" in out
    assert "ndcg@10" in out and "recall@10" in out and "valid" in out and "test" in out
    fused = json.loads((tmp_path / "q" / "manifest.json").read_text())["metrics"]["test"]
    assert main(["train", "-c", str(REPO / "configs" / "quickstart-popularity.yaml"),
                 "--out", str(tmp_path / "pop"), "--no-progress"]) == 0
    popular = json.loads((tmp_path / "pop" / "manifest.json").read_text())["metrics"]["test"]
    assert fused["ndcg@10"] > popular["ndcg@10"] + 0.05  # ~0.21 vs ~0.09 on this split


@pytest.mark.slow
@pytest.mark.parametrize("config", ["lastfm-topk-popularity.yaml", "lastfm-kg-ctr-popularity.yaml",
                                    "lastfm-kg-ctr-bprmf.yaml"])
def test_real_data_configs_train_and_evaluate(config, tmp_path):
    from conftest import shared_data_dir

    data = shared_data_dir()
    out = tmp_path / "run"
    assert main(["train", "-c", str(REPO / "configs" / config), "--out", str(out),
                 "--data-dir", str(data), "--no-progress"]) == 0
    assert main(["evaluate", str(out), "--data-dir", str(data), "--json",
                 str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())["metrics"]
    if "ctr" in config:
        assert metrics["auc"] > 0.7
    else:
        assert metrics["ndcg@10"] > 0.05
