"""Few-shot benchmark: k labelled records, mean +- std test AUC over seeds, per method.

Default: TALLRec's MovieLens-100K protocol (``fewshot-tallrec``, configs/ml100k-fewshot.yaml),
k = 16 / 64 / 256, seeds 0-4, AUC on the 1,000 test records. Methods (``--methods``):

- ``history-positivity``: share of the record's 10 history movies liked (no training).
- ``zero-shot-similarity``: untrained MiniLM: candidate-to-liked minus candidate-to-disliked
  cosine over the history (no training).
- ``zero-shot-prompt``: untrained MiniLM reading the fused prompt as a bi-encoder (no training).
- ``side-head``: the hybrid head's side features alone (no LM), trained on the k records and on
  pseudo-records read off their histories, with the k records' shot prior.
- ``side-head-strict``: the same without anything learned from the k records' history labels
  (no pseudo-records, no shot prior): only the k targets are labels.
- ``hybrid-lora``: the config's model: LoRA-tuned MiniLM cross-encoder + side head.
- ``lm-lora`` / ``lm-full``: the seed's literal recipe: the LM's classification logit alone,
  LoRA / full fine-tuning.

Only the k records train; the valid records pick the epoch (early stopping, as TALLRec does).
Every finished cell is appended to the JSON file at once, so ``--resume`` continues a run.

    python benchmarks/fewshot.py --quick                  # seeds 0-1
    python benchmarks/fewshot.py --methods side-head,history-positivity
    python benchmarks/fewshot.py --ks 256 --seeds 0 --methods hybrid-lora --set lr=0.001
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
METHODS = ("history-positivity", "zero-shot-similarity", "zero-shot-prompt", "side-head-strict",
           "side-head", "hybrid-lora", "lm-lora", "lm-full")
#: How each method changes the config's cross-encoder parameters.
STRICT_FEATURES = ["positivity", "recent_positivity", "similarity", "quality", "item_numeric",
                   "item_categories", "category_affinity"]
VARIANTS = {"side-head": {"mode": "none"},
            "side-head-strict": {"mode": "none", "augment": False,
                                 "side_features": STRICT_FEATURES},
            "hybrid-lora": {},
            "lm-lora": {"head": "lm"}, "lm-full": {"head": "lm", "mode": "full", "lr": 3e-5}}
PUBLISHED = {"TALLRec (LLaMA-7B + LoRA), README Table 1": {16: 0.6724, 64: 0.6748, 256: 0.7198}}


def few_shot_split(dataset, protocol: str, k: int, seed: int, params: dict):
    """``fewshot-tallrec`` draws its own k shots; other CTR protocols are split once (seed 0)
    and their train part cut to k rows drawn with ``seed``."""
    from fusionrec.data.protocols import make_split

    if protocol == "fewshot-tallrec":
        return make_split(dataset, protocol, seed=seed, **{**params, "shots": k})
    split = make_split(dataset, protocol, seed=0, **params)
    rows = np.sort(np.random.default_rng(seed).permutation(len(split.train))[:k])
    return dataclasses.replace(split, train=split.train.take(rows), seed=seed)


def run_cell(method: str, split, model_params: dict, cache_dir: str | None,
             overrides: dict | None = None) -> dict:
    """One (method, k, seed) cell. ``overrides`` (``--set``) win over the method's variant."""
    from fusionrec.evaluation.evaluate import evaluate
    from fusionrec.metrics import ctr_metrics, sigmoid
    from fusionrec.models.baselines.history_positivity import HistoryPositivity
    from fusionrec.models.cross_encoder.config import CrossEncoderConfig
    from fusionrec.models.cross_encoder.recommender import CrossEncoderRecommender
    from fusionrec.models.cross_encoder.zero_shot import zero_shot_scores
    from fusionrec.training.trainer import Trainer

    test = split.test
    started = time.perf_counter()
    extra: dict = {}
    params = {**model_params, "seed": split.seed, "progress": False,
              **({"cache_dir": cache_dir} if cache_dir else {})}
    if method == "history-positivity":
        probs, fit_s = HistoryPositivity().fit(split).score_pairs(test), 0.0
    elif method.startswith("zero-shot"):
        kind = "history-similarity" if method.endswith("similarity") else "prompt-cosine"
        config = CrossEncoderConfig.from_dict(params)
        probs, fit_s = zero_shot_scores(split.features, test, kind, config), 0.0
        probs = (probs - probs.min()) / max(probs.max() - probs.min(), 1e-12)  # rank-preserving
    else:
        runner = functools.partial(Trainer, evaluate=evaluate, progress=False)
        model = CrossEncoderRecommender(**{**params, **VARIANTS[method], **(overrides or {})},
                                        runner=runner).fit(split)
        fit_s = time.perf_counter() - started
        probs = sigmoid(model.score_pairs(test))
        summary = model.summary_
        extra = {"best_epoch": summary["best_epoch"], "best_valid_auc": summary["best_valid_auc"],
                 "epochs_run": summary["epochs_run"], "lm_active": summary["lm_active"],
                 "lm_train_seconds": summary["train_seconds"],
                 "side_choice": summary["side"].get("choice"), "side_l2": summary["side"].get("l2"),
                 "side_valid_auc": summary["side"].get("side_valid_auc"),
                 "side_rows": summary["side"].get("rows"),
                 "precision": model.precision_["precision"]}
        if model.feature_names_:
            extra["side_weights"] = dict(zip(model.feature_names_, np.round(
                model.net_.side.weight.detach().numpy()[0], 4).tolist()))
    metrics = ctr_metrics(test.label, probs)
    return {"auc": metrics["auc"], "logloss": metrics["logloss"], "fit_seconds": round(fit_s, 1),
            "total_seconds": round(time.perf_counter() - started, 1), **extra}


def table(cells: list[dict], methods, ks) -> str:
    lines = [f"{'method':<24}" + "".join(f"{'k=' + str(k):>28}" for k in ks)]
    for method in methods:
        row = f"{method:<24}"
        for k in ks:
            aucs = [c["auc"] for c in cells if c["method"] == method and c["k"] == k]
            secs = [c["total_seconds"] for c in cells if c["method"] == method and c["k"] == k]
            row += (f"{np.mean(aucs):.4f} ± {np.std(aucs):.4f} ({len(aucs)} / {np.mean(secs):.0f}s)"
                    .rjust(28) if aucs else f"{'-':>28}")
        lines.append(row)
    for name, values in PUBLISHED.items():
        lines.append(f"{'published':<24}" + "".join(f"{values.get(k, float('nan')):>28.4f}"
                                                  for k in ks) + f"   {name}")
    lines.append("cells: mean ± std test AUC over seeds (number of seeds / mean seconds per run)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "ml100k-fewshot.yaml"))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--ks", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--quick", action="store_true", help="seeds 0 and 1 only")
    parser.add_argument("--methods", default="history-positivity,zero-shot-similarity,"
                        "side-head-strict,side-head,hybrid-lora")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a cross-encoder parameter (YAML value)")
    parser.add_argument("--out", default=None, help="JSON results file")
    parser.add_argument("--resume", action="store_true", help="skip cells already in --out")
    parser.add_argument("--cache-dir", default=None, help="embedding cache folder")
    args = parser.parse_args(argv)

    import yaml

    from fusionrec.config import load_config
    from fusionrec.data.load import load_dataset

    config = load_config(args.config)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {METHODS}")
    seeds = args.seeds[:2] if args.quick else args.seeds
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    model_params = {**dict(config.model.params), **overrides}
    data_dir = args.data_dir or config.data.data_dir
    dataset, _ = load_dataset(config.data.preset or config.data.spec, data_dir)
    out = Path(args.out or REPO / "benchmarks" / "results" /
               f"fewshot-{dataset.name}.json")
    cells: list[dict] = []
    if args.resume and out.is_file():
        cells = json.loads(out.read_text(encoding="utf-8"))["cells"]
    done = {(c["method"], c["k"], c["seed"]) for c in cells}
    protocol = config.protocol.name
    params = {k: v for k, v in dict(config.protocol.params).items() if k != "shots"}
    for k in args.ks:
        for seed in seeds:
            split = None
            for method in methods:
                if (method, k, seed) in done:
                    continue
                split = split or few_shot_split(dataset, protocol, k, seed, params)
                cell = {"method": method, "k": k, "seed": seed,
                        **run_cell(method, split, model_params, args.cache_dir, overrides)}
                cells.append(cell)
                print(json.dumps(cell), flush=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps({
                    "dataset": dataset.name, "protocol": protocol, "config": args.config,
                    "model_params": model_params, "cpu_threads": os.cpu_count(),
                    "published": {n: {str(k): v for k, v in p.items()}
                                  for n, p in PUBLISHED.items()},
                    "cells": cells}, indent=1) + "\n", encoding="utf-8")
    print(table(cells, [m for m in METHODS if any(c["method"] == m for c in cells)], args.ks))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
