"""The stages of ``benchmarks/gpu_check.py``, each run in its own process with its own time cap.

A stage takes the parsed arguments and a :class:`Record` and writes its figures into the record
as it goes (the record is flushed to disk on every update), so a stage stopped at its cap still
leaves what it had measured. ``smoke`` sizes every stage down to the synthetic dataset and tiny
models, on whatever device ``auto`` finds (the CPU here), so a unit test runs them end to end.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
#: The committed CPU run of configs/lastfm-topk.yaml seed 0 whose per-epoch seconds we compare.
CPU_TOPK_HISTORY = RESULTS / "lastfm-topk-fusion" / "seed0_metrics.jsonl"
CPU_TOPK_SUMMARY = RESULTS / "lastfm-topk-fusion" / "summary.json"
#: The benchmark report's seed-0 fusion row: the reference test NDCG@10 of the acceptance test.
CPU_REPORT = RESULTS / "report" / "results.json"
NDCG_TOLERANCE = 0.003
#: Qwen2-0.5B's shape (random weights: only the cost is measured).
QWEN_05B = {"hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14,
            "num_key_value_heads": 2, "intermediate_size": 4864, "vocab_size": 151936}
QWEN_TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 1000}


class Record(dict):
    """A stage's figures, written to ``path`` after every :meth:`put`."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def put(self, **values) -> None:
        self.update(values)
        self.path.write_text(json.dumps(self, indent=1, default=str), encoding="utf-8")


def _device():
    from fusionrec.devices import resolve_device

    return resolve_device("auto")


def _peak_memory(record: Record, device) -> None:
    import torch

    if device.type == "cuda":
        record.put(peak_gpu_memory_gib=round(torch.cuda.max_memory_allocated(device) / 2**30, 3))


def _epoch_seconds(history: list[dict]) -> dict:
    seconds = [h["seconds"] for h in history]
    return {"epochs_run": len(seconds), "seconds_per_epoch": seconds,
            "median_seconds_per_epoch": round(statistics.median(seconds), 3) if seconds else None}


# ------------------------------------------------------------------ the gpu tests
def gpu_tests(args, record: Record) -> None:
    env = {**os.environ, "FUSIONREC_TOKENIZER_DIR": str(Path(args.assets) / "minilm")}
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "tests/test_gpu.py", "-q",
               "-p", "no:cacheprovider"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
    record.put(command=" ".join(command[1:]), returncode=done.returncode,
               seconds=round(time.perf_counter() - started, 1), summary=tail[-1] if tail else "",
               tail=tail)
    if done.returncode not in (0, 5):  # 5: nothing collected/ran (every test skipped is 0)
        raise RuntimeError(f"pytest -m gpu failed: {tail[-1] if tail else done.returncode}")


# ------------------------------------------------------------------ Last.FM top-K fusion
def cpu_reference() -> dict:
    """The CPU figures the GPU run is compared with, and where each comes from."""
    history = [json.loads(line) for line in CPU_TOPK_HISTORY.read_text().splitlines() if line]
    summary = json.loads(CPU_TOPK_SUMMARY.read_text())
    row = next(r for r in json.loads(CPU_REPORT.read_text())
               if r.get("dataset") == "lastfm" and r.get("model") == "fusion"
               and r.get("protocol") == "topk-random" and r.get("seed") == 0)
    return {"cpu": summary.get("machine"), **_epoch_seconds(history),
            "epoch_seconds_source": str(CPU_TOPK_HISTORY.relative_to(REPO)),
            "test_ndcg@10": row["metrics"]["ndcg@10"],
            "test_ndcg_source": f"{CPU_REPORT.relative_to(REPO)} (lastfm, fusion, seed 0)"}


def _smoke_config(task: str):
    from fusionrec.config import RunConfig

    protocol = "topk-random" if task == "topk" else "ctr-kgcn"
    return RunConfig.from_dict({
        "data": {"preset": "synthetic"}, "protocol": {"name": protocol, "seed": 0},
        "model": {"name": "fusion", "params": {"embedding_dim": 8, "hidden": [16], "layers": 1,
                                               "sources": "all",
                                               "encoder": {"model": "hashing:16"}}},
        "trainer": {"epochs": 2, "batch_size": 512, "lr": 0.01, "patience": 0}})


def _train(config, data_dir, record: Record, text_features=None, tweak=None):
    """Train ``config`` like ``fusionrec train`` (timing every epoch into ``record``) and
    return ``(model, split, test metrics)``."""
    from fusionrec.evaluation.evaluate import evaluate
    from fusionrec.training.run import build_model, evaluation_kwargs, load_data, make_split
    from fusionrec.training.trainer import Trainer

    started = time.perf_counter()
    split = make_split(load_data(config.data, data_dir).dataset, config.protocol)
    model = build_model(config)
    if tweak is not None:
        tweak(model)
    if text_features is not None:
        model.set_text_features(text_features)
    record.put(load_split_s=round(time.perf_counter() - started, 2), epochs=[])

    def on_epoch(epoch: int, row: dict) -> None:
        record["epochs"].append({"epoch": epoch, "seconds": row["seconds"],
                                 "train_loss": row["train_loss"],
                                 "valid": {k: v for k, v in row["valid"].items()
                                           if k in ("ndcg@10", "auc")}})
        record.put(**_epoch_seconds(record["epochs"]))

    trainer = Trainer(config.trainer, evaluate=evaluate,
                      evaluation=config.evaluation, progress=False,
                      callbacks=[on_epoch])
    trainer.fit(model, split)
    record.put(device=str(trainer.device_), best_epoch=trainer.summary_.best_epoch,
               stopped_early=trainer.summary_.stopped_early)
    test = evaluate(model, split, "test", **evaluation_kwargs(config))
    return model, split, test


def lastfm_topk(args, record: Record) -> None:
    from fusionrec.config import load_config

    device = _device()
    if args.smoke:
        config, features = _smoke_config("topk"), None
    else:
        config = load_config(REPO / "configs" / "lastfm-topk.yaml",
                             [f"trainer.device={device}", "trainer.seed=0"])
        features = _load_text_features(Path(args.assets) / "text" / "lastfm-topk.safetensors")
        record.put(cpu_reference=cpu_reference())
    record.put(config="smoke (synthetic)" if args.smoke else "configs/lastfm-topk.yaml")
    _, _, test = _train(config, args.data_dir, record, features)
    record.put(test_ndcg_at_10=test.get("ndcg@10"), test=test)
    _peak_memory(record, device)
    reference = record.get("cpu_reference")
    if reference and record.get("median_seconds_per_epoch"):
        gap = abs(test["ndcg@10"] - reference["test_ndcg@10"])
        record.put(speedup_vs_cpu=round(reference["median_seconds_per_epoch"]
                                        / record["median_seconds_per_epoch"], 2),
                   ndcg_gap=round(gap, 5), ndcg_within_tolerance=gap <= NDCG_TOLERANCE)


def _load_text_features(path: Path):
    from safetensors.numpy import load_file

    from fusionrec.encoders.features import TextFeatures

    tensors = load_file(str(path))
    meta = json.loads(path.with_suffix(".json").read_text())
    return TextFeatures(user=tensors["user"], item=tensors["item"], meta=meta)


# ------------------------------------------------------------------ Last.FM CTR, lm_mode lora
def random_minilm(assets: Path, into: Path, tiny: bool) -> Path:
    """A model folder with MiniLM's tokenizer and config (from the prepared assets) and random
    weights (seed 0): the LoRA epochs cost what the real weights cost. ``tiny``: 1 layer,
    32 wide."""
    import torch
    from transformers import BertConfig, BertModel

    source = assets / "minilm"
    into.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        target = into / item.name
        (shutil.copytree if item.is_dir() else shutil.copy)(item, target)
    config = BertConfig.from_pretrained(str(source))
    if tiny:
        config.update({"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "intermediate_size": 64})
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(into))
    return into


def lastfm_ctr_lora(args, record: Record) -> None:
    import tempfile

    from fusionrec.config import RunConfig, load_config

    device = _device()
    folder = random_minilm(Path(args.assets), Path(tempfile.mkdtemp()) / "minilm-random",
                           tiny=args.smoke)
    epochs = 2  # timed per epoch; two are enough (the first also warms kernels up)
    if args.smoke:
        raw = _smoke_config("ctr").to_dict()
        raw["model"]["params"].update(lm_mode="lora", lm_batch_texts=8,
                                      encoder={"model": str(folder), "max_length": 32})
        raw["trainer"].update(epochs=epochs, device=str(device))
        config = RunConfig.from_dict(raw)
    else:  # the config's encoder section names the LM the fusion model fine-tunes
        config = load_config(REPO / "configs" / "lastfm-kg-ctr.yaml", [
            "model.params.lm_mode=lora", f"encoder.model={folder}", f"trainer.epochs={epochs}",
            "trainer.patience=0", f"trainer.device={device}"])
    record.put(config="smoke (synthetic)" if args.smoke else "configs/lastfm-kg-ctr.yaml",
               lm_mode="lora", lm_weights="random (MiniLM's shape; cost, not quality)")
    _, _, test = _train(config, args.data_dir, record)
    record.put(test_auc=test.get("auc"))
    _peak_memory(record, device)


# ------------------------------------------------------------------ a 0.5B decoder with LoRA
def decoder_lora(args, record: Record) -> None:
    """A LoRA training step of a Qwen2-0.5B-shaped decoder (random weights, from its config)
    as the cross-encoder's backbone: the cross-encoder's LoRA wrapping, net and autocast."""
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, Qwen2Config

    from fusionrec.models.cross_encoder.backbone import apply_mode
    from fusionrec.models.cross_encoder.config import CrossEncoderConfig
    from fusionrec.models.cross_encoder.net import CrossEncoderNet, EncodedRows, collate
    from fusionrec.models.cross_encoder.train import autocast
    from fusionrec.training.precision import resolved_precision

    device = _device()
    shape = QWEN_TINY if args.smoke else QWEN_05B
    batch, length, steps = (2, 32, 2) if args.smoke else (8, 512, 6)
    torch.manual_seed(0)
    config = Qwen2Config(**shape, num_labels=1, pad_token_id=0, max_position_embeddings=4096)
    started = time.perf_counter()
    with torch.device(device):  # initialised where it trains: no 2 GB copy from the host
        lm = AutoModelForSequenceClassification.from_config(config)
    n_params = sum(p.numel() for p in lm.parameters())
    lm = apply_mode(lm, CrossEncoderConfig(mode="lora", device=str(device)))
    net = CrossEncoderNet(lm, n_side=0).to(device)
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    precision = resolved_precision("auto", device)
    record.put(shape=shape, parameters=n_params, trainable_parameters=trainable,
               batch=batch, tokens_per_row=length, precision=precision,
               build_s=round(time.perf_counter() - started, 2))
    rng = np.random.default_rng(0)
    rows = EncodedRows([{"input_ids": rng.integers(1, shape["vocab_size"], length).tolist(),
                         "attention_mask": [1] * length} for _ in range(batch)], None,
                       rng.integers(0, 2, batch).astype(np.float32))
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
    inputs = {k: v.to(device) for k, v in collate(rows, pad_id=0).items()}
    labels = torch.from_numpy(rows.labels).to(device)
    times = []
    net.train()
    for _ in range(steps):
        start = time.perf_counter()
        with autocast(precision, device):
            logits = net(inputs)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    timed = times[1:] or times  # step 0 warms kernels and the allocator
    step_s = statistics.median(timed)
    record.put(step_seconds=[round(t, 4) for t in times], median_step_s=round(step_s, 4),
               tokens_per_s=round(batch * length / step_s, 1), loss=float(loss))
    _peak_memory(record, device)


# ------------------------------------------------------------------ synthetic scale point
def scale_point(args, record: Record) -> None:
    """One fusion epoch (every source) on a synthetic world of 10^7 interactions x 10^5 items
    (10^4 users, as benchmarks/scale.py's grid). The text features are random 64-d vectors:
    rendering and encoding 110,000 texts is the encoder's cost, measured by scale.py, and
    would take this stage's whole time cap on the host CPU."""
    import numpy as np

    from fusionrec.config import RunConfig
    from fusionrec.data.protocols import make_split
    from fusionrec.data.synthetic import generate
    from fusionrec.encoders.features import TextFeatures
    from fusionrec.training.run import build_model
    from fusionrec.evaluation.evaluate import evaluate
    from fusionrec.training.trainer import Trainer

    device = _device()
    users, items, interactions = (200, 100, 3_000) if args.smoke else (
        10_000, 100_000, 10_000_000)
    record.put(users=users, items=items, interactions=interactions)
    started = time.perf_counter()
    dataset = generate(n_users=users, n_items=items, n_interactions=interactions, seed=0)
    record.put(generate_s=round(time.perf_counter() - started, 2))
    started = time.perf_counter()
    split = make_split(dataset, "topk-random", 0)
    record.put(split_s=round(time.perf_counter() - started, 2),
               train_positives=int(len(split.train.positives())))
    rng = np.random.default_rng(0)
    features = TextFeatures(user=rng.standard_normal((users, 64), dtype=np.float32),
                            item=rng.standard_normal((items, 64), dtype=np.float32))
    config = RunConfig.from_dict({
        "model": {"name": "fusion", "params": {"embedding_dim": 32, "sources": "all",
                                               "layers": 2, "social_layers": 1,
                                               "hidden": [64], "hide_batch_edges": False}},
        "trainer": {"epochs": 1, "batch_size": 4096, "lr": 0.005, "patience": 0,
                    "device": str(device), "precision": "auto"}})
    model = build_model(config).set_text_features(features)
    trainer = Trainer(config.trainer, evaluate=evaluate,
                      evaluation=config.evaluation, progress=False)
    started = time.perf_counter()
    trainer.fit(model, split)
    row = trainer.summary_.history[0]
    record.put(fit_s=round(time.perf_counter() - started, 2), epoch_s=row["seconds"],
               steps=row["step"], valid_ndcg_at_10=row["valid"].get("ndcg@10"))
    _peak_memory(record, device)


STAGES = {"gpu_tests": gpu_tests, "lastfm_topk": lastfm_topk,
          "lastfm_ctr_lora": lastfm_ctr_lora, "decoder_lora": decoder_lora,
          "scale_point": scale_point}
