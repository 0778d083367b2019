"""``benchmarks/gpu_check.py --smoke`` end to end (every stage at toy sizes, on the CPU when
there is no GPU): the prepare step, each stage in its own capped process, one JSON report.
Untimed: the figures of a smoke run mean nothing; what is checked is that the lent machine's
one command has nothing left to fail on but the GPU itself."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_check  # noqa: E402
import gpu_stages  # noqa: E402


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    assets = tmp_path_factory.mktemp("assets")
    assert gpu_check.main(["--prepare", str(assets), "--smoke"]) == 0
    assert (assets / "minilm" / "tokenizer.json").is_file()
    assert not list(assets.rglob("*.safetensors"))  # the smoke assets carry no weights
    out = tmp_path_factory.mktemp("out") / "gpu_check.json"
    code = gpu_check.main(["--smoke", "--assets", str(assets), "--json", str(out)])
    return code, json.loads(out.read_text())


def test_every_stage_runs_and_lands_in_one_json(report):
    code, data = report
    assert set(data["stages"]) == set(gpu_stages.STAGES)
    failed = {n: s.get("error_tail") for n, s in data["stages"].items() if s["status"] != "ok"}
    assert not failed and code == 0
    assert data["machine"]["torch"] and data["machine"]["cpu"]
    assert "gpu" in data["machine"]  # null without one


def test_stages_report_their_figures(report):
    stages = report[1]["stages"]
    topk = stages["lastfm_topk"]
    assert topk["epochs_run"] == 2 and topk["median_seconds_per_epoch"] > 0
    assert 0 <= topk["test_ndcg_at_10"] <= 1
    assert stages["lastfm_ctr_lora"]["lm_mode"] == "lora"
    assert len(stages["lastfm_ctr_lora"]["seconds_per_epoch"]) == 2
    decoder = stages["decoder_lora"]
    assert decoder["trainable_parameters"] < decoder["parameters"]  # LoRA: adapters only
    assert decoder["tokens_per_s"] > 0
    assert stages["scale_point"]["epoch_s"] > 0 and stages["scale_point"]["steps"] >= 1
    assert stages["gpu_tests"]["returncode"] in (0, 5)


def test_a_failing_stage_is_recorded_and_the_rest_still_run(tmp_path, monkeypatch):
    """A stage that dies (here: no assets, so no tokenizer for the LoRA LM) is recorded with
    its error instead of aborting the check."""
    args = type("Args", (), {"assets": str(tmp_path / "missing"), "data_dir": str(tmp_path),
                             "smoke": True, "cache_dir": str(tmp_path / "cache")})()
    result = gpu_check.run_stage("lastfm_ctr_lora", args, cap=120)
    assert result["status"] == "failed" and result["error_tail"]
    result = gpu_check.run_stage("scale_point", args, cap=0.01)
    assert result["status"] == "timeout"


def test_cpu_reference_reads_the_committed_cpu_run():
    reference = gpu_stages.cpu_reference()
    assert reference["test_ndcg@10"] == pytest.approx(0.2197, abs=5e-5)
    assert reference["median_seconds_per_epoch"] > 10  # the CPU needed minutes per epoch
    assert Path(REPO / reference["epoch_seconds_source"]).is_file()
