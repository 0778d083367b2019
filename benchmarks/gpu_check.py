"""The ready device check of issue 18: everything FusionRec does on one CUDA GPU, in < 8 minutes.

On a lent GPU machine (working tree + the carried ``.gpu`` folder; see docs/gpu.md), one line:

    HF_HUB_OFFLINE=1 python3 benchmarks/gpu_check.py --json $OUT/gpu_check.json

Before that, once, here (writes ``.gpu``: the Last.FM data, MiniLM's tokenizer and config, and
the Last.FM top-K run's MiniLM text features, < 64 MiB in all; ``.gpu/`` is git-ignored):

    HF_HUB_OFFLINE=1 python benchmarks/gpu_check.py --prepare .gpu --data-dir ../shared/data

Stages, each in its own process under its own time cap (a stage that fails or runs out of time
is recorded as such and the next one runs):

1. ``gpu_tests``: ``pytest -m gpu tests/test_gpu.py``;
2. ``lastfm_topk``: ``configs/lastfm-topk.yaml`` seed 0 to its early stop on the GPU, seconds
   per epoch against the committed CPU run's and test NDCG@10 against the CPU's (± 0.003). The
   text features are prepared here as the CPU run computed them (bundled MiniLM, embedding
   cache), so the two runs differ only in the device;
3. ``lastfm_ctr_lora``: ``configs/lastfm-kg-ctr.yaml`` with ``lm_mode: lora``, two epochs timed,
   on a MiniLM-shaped LM with random weights (the real weights do not fit the 64 MiB carry);
4. ``decoder_lora``: LoRA training steps of a Qwen2-0.5B-shaped decoder (random weights, from its
   config) as the cross-encoder's backbone: tokens/s and peak GPU memory;
5. ``scale_point``: one fusion epoch on a synthetic world of 10^7 interactions x 10^5 items.

It writes one JSON file (``--json``): machine, torch, every stage's figures and status.
``--smoke`` runs every stage at toy sizes on the synthetic dataset, on the CPU when there is no
GPU (``tests/test_gpu_check.py`` does, untimed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_stages import REPO, STAGES, Record  # noqa: E402

# this checkout's code, installed or not (the lent machine runs it from the working tree)
SRC = str(REPO / "src")
sys.path.insert(0, SRC)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [SRC] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])

#: Seconds per stage on one H100: together < 8 minutes with process start-ups.
CAPS = {"gpu_tests": 80, "lastfm_topk": 170, "lastfm_ctr_lora": 60, "decoder_lora": 45,
        "scale_point": 115}
SMOKE_CAP = 300
#: The carry limit of the lent machine, less room for the working tree.
ASSET_BUDGET = 56 * 2**20
DATA_FOLDERS = ("lastfm-hetrec2011", "lastfm-kg")


def machine() -> dict:
    import torch

    from encode import cpu_model

    gpu = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        gpu = {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
               "bf16": torch.cuda.is_bf16_supported(), "count": torch.cuda.device_count()}
    return {"cpu": cpu_model(), "gpu": gpu, "torch": torch.__version__,
            "cuda": torch.version.cuda, "python": platform.python_version()}


def run_stage(name: str, args, cap: float) -> dict:
    """``name`` in a child process stopped after ``cap`` seconds; its record plus a status."""
    out = Path(tempfile.mkdtemp(prefix=f"gpu-check-{name}-")) / "record.json"
    command = [sys.executable, __file__, "--stage", name, "--record", str(out),
               "--assets", args.assets, "--data-dir", args.data_dir] + (
        ["--smoke"] if args.smoke else [])
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=cap,
                              env={**os.environ, "FUSIONREC_CACHE": args.cache_dir})
        status = "ok" if done.returncode == 0 else "failed"
        tail = (done.stdout + done.stderr).strip().splitlines()[-12:]
    except subprocess.TimeoutExpired as expired:
        status = "timeout"
        text = (expired.stdout or b"") + (expired.stderr or b"")
        tail = (text.decode(errors="replace") if isinstance(text, bytes) else text
                ).strip().splitlines()[-12:]
    record = json.loads(out.read_text()) if out.is_file() else {}
    result = {"status": status, "cap_s": cap, "wall_s": round(time.perf_counter() - started, 1),
              **record}
    if status != "ok":
        result["error_tail"] = tail
    return result


def check(args) -> dict:
    stages = args.only or list(STAGES)
    # embeddings of random-weight LMs must not land in the user's own cache
    args.cache_dir = tempfile.mkdtemp(prefix="gpu-check-cache-")
    report = {"machine": machine(), "smoke": args.smoke, "assets": args.assets,
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "stages": {}}
    for name in stages:
        cap = SMOKE_CAP if args.smoke else CAPS[name]
        print(f"[gpu_check] {name} (cap {cap}s) ...", flush=True)
        result = run_stage(name, args, cap)
        report["stages"][name] = result
        print(f"[gpu_check] {name}: {result['status']} in {result['wall_s']}s", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1, default=str), "utf-8")
    return report


def prepare(folder: Path, data_dir: str | None, smoke: bool) -> dict:
    """Write what the GPU run needs and the lent machine lacks into ``folder``."""
    from fusionrec.encoders.resolve import _bundled_path

    folder.mkdir(parents=True, exist_ok=True)
    minilm = folder / "minilm"  # tokenizer, pooling and config: no weights
    shutil.rmtree(minilm, ignore_errors=True)
    shutil.copytree(_bundled_path(), minilm, ignore=shutil.ignore_patterns(
        "*.safetensors", "*.bin", "*.onnx", "README.md", ".gitattributes", "data_config.json"))
    if not smoke:
        if data_dir is None:
            raise SystemExit("--prepare needs --data-dir (the Last.FM folders are copied)")
        for name in DATA_FOLDERS:
            shutil.rmtree(folder / "data" / name, ignore_errors=True)
            shutil.copytree(Path(data_dir) / name, folder / "data" / name)
        _topk_text_features(folder / "text" / "lastfm-topk.safetensors", data_dir)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    if size > ASSET_BUDGET:
        raise SystemExit(f"{folder} holds {size / 2**20:.1f} MiB; the carry limit leaves "
                         f"{ASSET_BUDGET / 2**20:.0f} MiB")
    return {"folder": str(folder), "mib": round(size / 2**20, 1)}


def _topk_text_features(path: Path, data_dir: str) -> None:
    """configs/lastfm-topk.yaml's MiniLM text features, computed as its fusion model does
    (the split's features, the config's encoder, through the embedding cache)."""
    from safetensors.numpy import save_file

    from fusionrec.config import load_config
    from fusionrec.models.fusion.build import load_text_features
    from fusionrec.training.run import build_model, load_data, make_split

    config = load_config(REPO / "configs" / "lastfm-topk.yaml")
    split = make_split(load_data(config.data, data_dir).dataset, config.protocol)
    encoder = build_model(config).config.text_encoder_config()
    features = load_text_features(split.features, encoder)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"user": features.user, "item": features.item}, str(path))
    meta = {"config": "configs/lastfm-topk.yaml", "n_users": split.features.n_users,
            "n_items": split.features.n_items, "encoder": features.meta.get("encoder"),
            "text_versions": features.meta.get("text_versions")}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1, default=str), "utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assets", default=".gpu", help="folder written by --prepare")
    parser.add_argument("--data-dir", default=None, help="data root (default: ASSETS/data)")
    parser.add_argument("--json", default=None, help="write the report here")
    parser.add_argument("--smoke", action="store_true", help="toy sizes, synthetic data")
    parser.add_argument("--only", nargs="+", choices=sorted(STAGES), help="run these stages")
    parser.add_argument("--prepare", metavar="DIR", help="write the assets folder and stop")
    parser.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)
    parser.add_argument("--record", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.prepare:
        print(json.dumps(prepare(Path(args.prepare), args.data_dir, args.smoke)))
        return 0
    args.data_dir = args.data_dir or str(Path(args.assets) / "data")
    if args.stage:  # a child process: one stage
        STAGES[args.stage](args, Record(Path(args.record)))
        return 0
    report = check(args)
    print(json.dumps({n: {k: v for k, v in s.items() if k in (
        "status", "wall_s", "median_seconds_per_epoch", "speedup_vs_cpu", "test_ndcg_at_10",
        "ndcg_within_tolerance", "tokens_per_s", "peak_gpu_memory_gib", "epoch_s")}
        for n, s in report["stages"].items()}, indent=1))
    return 0 if all(s["status"] == "ok" for s in report["stages"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
