"""FusionRec's fusion model on Last.FM: CTR (KGCN protocol) and top-K (random 8:1:1 split).

    python benchmarks/fusion_lastfm.py --task ctr                  # lastfm-kg, ctr-kgcn, seed 0
    python benchmarks/fusion_lastfm.py --task topk --seeds 0 1 2   # lastfm (hetrec), topk-random
    python benchmarks/fusion_lastfm.py --task ctr --ablation       # + all-but-one-source runs
    python benchmarks/fusion_lastfm.py --task ctr --set fusion=gated --set trainer.lr=0.002
    python benchmarks/fusion_lastfm.py --task ctr --json results/fusion_ctr.json

Every feature the model reads comes from ``split.features`` (training rows only). LM text
features are encoded once (MiniLM by default) and cached on disk; the table reports the text
time separately from training and evaluation. Prints a table; ``--json`` also writes the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

#: Tuned defaults per task (see the module docstring of fusionrec.models.fusion.config).
TASKS = {
    "ctr": {"preset": "lastfm-kg", "protocol": "ctr-kgcn",
            "metrics": ("auc", "f1", "logloss", "accuracy"),
            "params": {"embedding_dim": 64, "fusion": "concat", "source_dropout": 0.1,
                       "layers": 2, "social_layers": 2, "kg_layers": 1, "hidden": [128, 64],
                       "mlp_dropout": 0.1, "retrieval_weight": 1.0,
                       "trainer": {"epochs": 30, "batch_size": 2048, "lr": 0.005,
                                   "patience": 5}}},
    "topk": {"preset": "lastfm", "protocol": "topk-random",
             "metrics": ("ndcg@10", "recall@10", "mrr@10", "hr@10", "precision@10"),
             "params": {"embedding_dim": 64, "fusion": "concat", "source_dropout": 0.1,
                        "layers": 3, "social_layers": 2, "retrieval_loss": "bpr", "hide_batch_edges": False,
                        "trainer": {"epochs": 200, "batch_size": 8192, "lr": 0.005,
                                    "patience": 10}}},
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="ctr")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--sources", nargs="+", default=None,
                        help='sources to fuse (default "all" the split has)')
    parser.add_argument("--ablation", action="store_true",
                        help="also run all-but-one-source and interactions-only variants")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a model param (YAML value); trainer.X for the trainer")
    parser.add_argument("--encoder", default="all-MiniLM-L6-v2",
                        help="LM for item_text (e.g. hashing:384 for a quick run)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest on a busy shared machine)")
    parser.add_argument("--json", default=None, help="write the result rows here")
    return parser.parse_args(argv)


def data_dir(explicit: str | None) -> str | None:
    """``--data-dir`` > ``$FUSIONREC_DATA`` > the shared folder next to the repo > default."""
    if explicit or os.environ.get("FUSIONREC_DATA"):
        return explicit or os.environ["FUSIONREC_DATA"]
    shared = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return str(shared) if shared.is_dir() else None


def model_params(task: str, overrides: list[str], sources, encoder: str, threads: int) -> dict:
    import yaml

    params = json.loads(json.dumps(TASKS[task]["params"]))  # deep copy
    params["encoder"] = {"model": encoder, "num_threads": threads}
    for item in overrides:
        key, _, value = item.partition("=")
        target = params
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = yaml.safe_load(value)
    if sources:
        params["sources"] = list(sources)
    return params


def variants(args, available: tuple[str, ...]) -> list[tuple[str, object]]:
    """(label, sources) pairs to run."""
    runs = [("all" if not args.sources else "+".join(args.sources), args.sources or "all")]
    if args.ablation:
        for name in available:
            if name != "interactions":
                runs.append((f"-{name}", [s for s in available if s != name]))
        runs.append(("interactions only", ["interactions"]))
    return runs


def run_one(split, params: dict, text) -> dict:
    from fusionrec.config import TrainerConfig
    from fusionrec.evaluation.evaluate import evaluate
    from fusionrec.models.fusion.recommender import FusionRecommender
    from fusionrec.training.trainer import Trainer

    params = dict(params)
    trainer = TrainerConfig(**{**params.pop("trainer", {}), "seed": split.seed})
    model = FusionRecommender(trainer=trainer, **params)
    if text is not None:
        model.set_text_features(text)
    started = time.perf_counter()
    fitter = Trainer(trainer, evaluate=evaluate, progress=True)
    fitter.fit(model, split)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    metrics = evaluate(model, split, "test")
    summary = fitter.summary_
    return {"metrics": metrics, "sources": list(model.sources_), "fit_s": round(fit_seconds, 1),
            "eval_s": round(time.perf_counter() - started, 1), "best_epoch": summary.best_epoch,
            "epochs_run": summary.epochs_run, "valid_best": summary.best_value}


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from fusionrec.data.load import load_dataset
    from fusionrec.data.protocols import make_split
    from fusionrec.models.fusion.build import available_sources, load_text_features

    spec = TASKS[args.task]
    dataset, _ = load_dataset(spec["preset"], data_dir(args.data_dir))
    rows = []
    for seed in args.seeds:
        split = make_split(dataset, spec["protocol"], seed=seed)
        available = available_sources(split.features)
        params = model_params(args.task, args.set, args.sources, args.encoder, args.threads)
        text, text_s = None, 0.0
        if "item_text" in available and (not args.sources or "item_text" in args.sources):
            started = time.perf_counter()
            text = load_text_features(split.features, params["encoder"])
            text_s = time.perf_counter() - started
        for label, sources in variants(args, available):
            run_params = {**params, "sources": sources}
            if sources != "all" and "item_text" not in sources:
                run_params.pop("encoder")
            result = run_one(split, run_params, text if "encoder" in run_params else None)
            row = {"task": args.task, "preset": spec["preset"], "protocol": spec["protocol"],
                   "variant": label, "seed": seed, "text_s": round(text_s, 1), **result,
                   "params": run_params}
            rows.append(row)
            print(_format_row(row, spec["metrics"]), flush=True)
    print()
    print(table(rows, spec["metrics"]))
    if args.json:
        out = {"machine": {"cpu": platform.processor() or platform.machine(),
                           "cores": os.cpu_count(), "threads": args.threads,
                           "torch": torch.__version__},
               "command": " ".join(sys.argv), "rows": rows}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2, default=float) + "\n")
    return 0


def _format_row(row: dict, metrics) -> str:
    values = "  ".join(f"{m}={row['metrics'].get(m, float('nan')):.4f}" for m in metrics)
    return (f"[{row['variant']} seed={row['seed']}] {values}  fit={row['fit_s']}s "
            f"eval={row['eval_s']}s text={row['text_s']}s best_epoch={row['best_epoch']}")


def table(rows: list[dict], metrics) -> str:
    """Mean (and std over seeds when more than one) per variant."""
    header = f"{'variant':<24}" + "".join(f"{m:>14}" for m in metrics) + f"{'fit s':>9}{'seeds':>7}"
    lines = [header, "-" * len(header)]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        group = [r for r in rows if r["variant"] == variant]
        cells = []
        for m in metrics:
            values = [r["metrics"][m] for r in group]
            mean = statistics.fmean(values)
            spread = f"±{statistics.stdev(values):.3f}" if len(values) > 1 else ""
            cells.append(f"{mean:.4f}{spread}".rjust(14))
        fit = statistics.fmean(r["fit_s"] for r in group)
        lines.append(f"{variant:<24}" + "".join(cells) + f"{fit:>9.0f}{len(group):>7}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
