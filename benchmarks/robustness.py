"""Robustness: how FusionRec and ID baselines degrade with fake training interactions, and how
FusionRec degrades when one source is missing at inference.

    python benchmarks/robustness.py                        # synthetic, seconds (a smoke run)
    python benchmarks/robustness.py --preset lastfm --epochs 100 --encoder all-MiniLM-L6-v2

1. *Noise*: ``p`` x (number of training positives) random (user, item) pairs, none of them a
   valid/test pair, are added to the training part only (and to the interactions the leak-free
   features are derived from); valid/test stay clean. Models: fusion, bpr-mf, lightgcn.
2. *Missing source*: a trained fusion model scores with one source masked out for every user
   and item, with and without source dropout in training (``source_dropout`` 0.1 vs 0).

Prints both tables, writes ``--json`` and a two-panel ``--plot`` (PNG).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
METRIC = "ndcg@10"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="synthetic")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.4])
    parser.add_argument("--models", nargs="+", default=["fusion", "bpr-mf", "lightgcn"])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--encoder", default="hashing:64",
                        help="fusion text encoder (all-MiniLM-L6-v2 for real runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="default: benchmarks/results/robustness_PRESET.json")
    parser.add_argument("--plot", help="default: benchmarks/results/robustness_PRESET.png")
    return parser.parse_args(argv)


def noisy_split(dataset, split, fraction: float, seed: int):
    """``(dataset', split')`` with ``fraction`` x |train positives| fake training pairs."""
    from fusionrec.data.leakage import pair_keys
    from fusionrec.data.protocols import derive_features
    from fusionrec.data.schema import Interactions
    from fusionrec.data.split import Pairs

    if fraction <= 0:
        return dataset, split
    rng = np.random.default_rng(seed)
    n_items = dataset.n_items
    taken = set(pair_keys(dataset.interactions.user, dataset.interactions.item, n_items))
    want = int(round(fraction * len(split.train.positives())))
    users = rng.integers(0, dataset.n_users, size=3 * want)
    items = rng.integers(0, n_items, size=3 * want)
    keys = pair_keys(users, items, n_items)
    _, first = np.unique(keys, return_index=True)
    fresh = [j for j in np.sort(first) if keys[j] not in taken][:want]
    users, items = users[fresh], items[fresh]
    inter = dataset.interactions
    fill = lambda col, value: None if col is None else np.concatenate(  # noqa: E731
        [col, np.full(len(users), value, dtype=col.dtype)])
    noisy = dataset.replace(interactions=Interactions(
        np.concatenate([inter.user, users]), np.concatenate([inter.item, items]),
        fill(inter.rating, np.nanmax(inter.rating) if inter.rating is not None else 0),
        fill(inter.weight, 1.0), fill(inter.timestamp, 0)))
    train = split.train
    train = Pairs(np.concatenate([train.user, users]), np.concatenate([train.item, items]),
                  np.concatenate([train.label, np.ones(len(users), np.float32)]))
    features = derive_features(noisy, split.protocol, train, split.valid, split.test)
    return noisy, dataclasses.replace(split, train=train, features=features)


def build(name: str, epochs: int, encoder: str, seed: int, **extra):
    from fusionrec.models.registry import model_class

    trainer = {"epochs": epochs, "batch_size": 1024, "lr": 0.01, "seed": seed, "patience": 0,
               "num_threads": 1}
    params = dict(model_class(name).SMOKE_PARAMS)
    params.update({"embedding_dim": 32, "trainer": trainer})
    if name == "fusion":
        params.update({"encoder": {"model": encoder}, "hidden": [64], **extra})
    return model_class(name)(**params)


def fit(model, split):
    from fusionrec.evaluation.evaluate import evaluate
    from fusionrec.training.trainer import Trainer

    return Trainer(model.trainer, evaluate=evaluate, progress=False).fit(model, split)


def without_source(model, source: str):
    """A saved-and-reloaded copy of a fusion ``model`` with ``source`` masked everywhere."""
    from fusionrec.models.fusion.model import SourceTables
    from fusionrec.models.fusion.recommender import FusionRecommender

    with tempfile.TemporaryDirectory() as folder:
        model.save(folder)
        copy = FusionRecommender.load(folder)
    s = list(copy.sources_).index(source)
    tables = copy.tables_
    user_mask, item_mask = tables.user_mask.clone(), tables.item_mask.clone()
    user_mask[:, s] = False
    item_mask[:, s] = False
    copy.tables_ = SourceTables(tables.user, tables.item, user_mask, item_mask)
    return copy


def main(argv=None) -> int:
    from fusionrec.data.load import load_dataset
    from fusionrec.data.protocols import make_split
    from fusionrec.evaluation.evaluate import evaluate

    args = parse_args(argv)
    results = Path(__file__).parent / "results"
    args.json = args.json or str(results / f"robustness_{args.preset}.json")
    args.plot = args.plot or str(results / f"robustness_{args.preset}.png")
    started = time.perf_counter()
    dataset, _ = load_dataset(args.preset)
    split = make_split(dataset, "topk-random", args.seed)
    noise_rows = []
    for fraction in args.noise:
        _, noisy = noisy_split(dataset, split, fraction, args.seed)
        for name in args.models:
            model = fit(build(name, args.epochs, args.encoder, args.seed), noisy)
            value = evaluate(model, noisy, "test", ks=(10,))[METRIC]
            noise_rows.append({"model": name, "noise": fraction, METRIC: value})
            print(f"noise {fraction:.0%}  {name:10s} {METRIC} {value:.4f}", flush=True)
    source_rows = []
    for dropout in (0.1, 0.0):
        model = fit(build("fusion", args.epochs, args.encoder, args.seed,
                          source_dropout=dropout), split)
        full = evaluate(model, split, "test", ks=(10,))[METRIC]
        source_rows.append({"source_dropout": dropout, "removed": None, METRIC: full})
        for source in model.sources_:
            value = evaluate(without_source(model, source), split, "test", ks=(10,))[METRIC]
            source_rows.append({"source_dropout": dropout, "removed": source, METRIC: value})
            print(f"dropout {dropout}  without {source:16s} {METRIC} {value:.4f} "
                  f"(full {full:.4f})", flush=True)
    result = {"preset": args.preset, "protocol": "topk-random", "seed": args.seed,
              "epochs": args.epochs, "encoder": args.encoder, "metric": METRIC,
              "noise": noise_rows, "missing_source": source_rows,
              "relative_drop": relative_drops(noise_rows, source_rows),
              "seconds": round(time.perf_counter() - started, 1),
              "load_average": list(os.getloadavg())}
    print(json.dumps(result["relative_drop"], indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.plot:
        plot(result, args.plot)
    return 0


def relative_drops(noise_rows, source_rows) -> dict:
    """Metric lost relative to the clean (or full-source) model, per model and condition."""
    out: dict = {"noise": {}, "missing_source": {}}
    for name in {r["model"] for r in noise_rows}:
        rows = {r["noise"]: r[METRIC] for r in noise_rows if r["model"] == name}
        clean = rows.get(0.0)
        out["noise"][name] = {str(k): round(1 - v / clean, 4) if clean else None
                              for k, v in rows.items() if k}
    for dropout in {r["source_dropout"] for r in source_rows}:
        rows = [r for r in source_rows if r["source_dropout"] == dropout]
        full = next(r[METRIC] for r in rows if r["removed"] is None)
        out["missing_source"][str(dropout)] = {r["removed"]: round(1 - r[METRIC] / full, 4)
                                               for r in rows if r["removed"]}
    return out


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name in dict.fromkeys(r["model"] for r in result["noise"]):
        rows = [r for r in result["noise"] if r["model"] == name]
        left.plot([100 * r["noise"] for r in rows], [r[METRIC] for r in rows], marker="o",
                  label=name)
    left.set(xlabel="fake training interactions (%)", ylabel=METRIC, title="Injected noise")
    left.legend()
    sources = [r["removed"] for r in result["missing_source"] if r["removed"]]
    sources = list(dict.fromkeys(sources))
    width = 0.4
    for k, dropout in enumerate((0.1, 0.0)):
        rows = {r["removed"]: r[METRIC] for r in result["missing_source"]
                if r["source_dropout"] == dropout}
        right.bar(np.arange(len(sources)) + k * width, [rows[s] for s in sources], width,
                  label=f"source_dropout={dropout}")
        right.axhline(rows[None], color=f"C{k}", linestyle="--", linewidth=1)
    right.set_xticks(np.arange(len(sources)) + width / 2, sources, rotation=30, ha="right")
    right.set(ylabel=METRIC, title="One source missing at inference (dashed: all sources)")
    right.legend()
    fig.suptitle(f"{result['preset']}, {result['protocol']}, seed {result['seed']}")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
