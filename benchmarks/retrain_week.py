"""Continual learning on Last.FM: hold out a "new week", train the base model without it, record
the week as events in a SQLite store, ``retrain``, and compare before/after on new and old data.

    python benchmarks/retrain_week.py                          # latest 5% by tag date
    python benchmarks/retrain_week.py --slice random --fraction 0.05
    python benchmarks/retrain_week.py --base-epochs 12 --json benchmarks/results/retrain_week.json

The hetrec listens carry no timestamps; tag assignments do (day granularity, mostly the first
of a month). ``--slice recent`` dates a listened (user, artist) pair by the user's first tag on
that artist and takes the most recent ``fraction`` of all listens among the dated pairs (the
literal latest week holds only ~230 listened pairs, too few to measure); ``--slice random``
draws the pairs uniformly. Artists listened to only inside the slice leave the base catalogue
and come back as new items (``ItemRecord`` with their name); the base data also loses the tag
assignments on slice pairs (they are what dated them). Prints a table; ``--json`` writes it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slice", choices=("recent", "random"), default="recent")
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--base-epochs", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=3, help="retrain epochs")
    parser.add_argument("--replay", type=float, default=0.5)
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("--encoder", default="all-MiniLM-L6-v2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--work", default=None, help="work folder (default: a new temp folder)")
    parser.add_argument("--json", default=None, help="write the results here")
    return parser.parse_args(argv)


def data_dir(explicit: str | None) -> str:
    if explicit or os.environ.get("FUSIONREC_DATA"):
        return explicit or os.environ["FUSIONREC_DATA"]
    return str(Path(__file__).resolve().parents[1].parent / "shared" / "data")


def pick_slice(dataset, how: str, fraction: float, rng) -> tuple[np.ndarray, dict]:
    """Boolean mask over interactions, and a description of what was taken."""
    inter = dataset.interactions
    n = int(round(fraction * len(inter)))
    if how == "random":
        mask = np.zeros(len(inter), bool)
        mask[rng.choice(len(inter), n, replace=False)] = True
        return mask, {"slice": "random", "pairs": n}
    tags = dataset.item_attributes.tags
    known = tags.user >= 0
    keys = tags.user[known] * dataset.n_items + tags.item[known]
    order = np.lexsort((tags.timestamp[known], keys))  # per pair, earliest tag first
    pair, first = np.unique(keys[order], return_index=True)
    dated = dict(zip(pair.tolist(), tags.timestamp[known][order][first].tolist()))
    stamp = np.array([dated.get(int(k), -1) for k in inter.user * dataset.n_items + inter.item])
    candidates = np.flatnonzero(stamp >= 0)
    latest = candidates[np.argsort(-stamp[candidates], kind="stable")][:n]
    mask = np.zeros(len(inter), bool)
    mask[latest] = True
    week = int((stamp >= stamp.max() - 7 * 86400).sum())
    day = lambda s: time.strftime("%Y-%m-%d", time.gmtime(int(s)))  # noqa: E731
    return mask, {"slice": "recent by first tag date", "pairs": int(mask.sum()),
                  "dated_listens": int(len(candidates)), "latest_week_listens": week,
                  "from": day(stamp[latest].min()), "to": day(stamp[latest].max())}


def base_dataset(dataset, mask: np.ndarray):
    """The dataset without the slice: its listens, the tags on its pairs, and the artists that
    only it has (re-indexed; Last.FM has no KG, reviews or item attribute columns)."""
    from fusionrec.data.leakage import pair_keys
    from fusionrec.data.schema import ItemAttributes, ItemText, Vocabulary

    assert dataset.kg is None and dataset.reviews is None
    inter = dataset.interactions
    keep_item = np.zeros(dataset.n_items, bool)
    keep_item[inter.item[~mask]] = True
    keep_item |= ~np.isin(np.arange(dataset.n_items), inter.item)  # never listened: stays
    remap = np.cumsum(keep_item) - 1
    kept = inter.take(~mask)
    from fusionrec.data.schema import Interactions

    kept = Interactions(kept.user, remap[kept.item], kept.rating, kept.weight, kept.timestamp)
    tags = dataset.item_attributes.tags
    held = pair_keys(inter.user[mask], inter.item[mask], dataset.n_items)
    tag_rows = keep_item[tags.item] & ~np.isin(pair_keys(tags.user, tags.item, dataset.n_items),
                                               held)
    tags = tags.take(tag_rows)
    tags = type(tags)(remap[tags.item], tags.tag, tags.vocabulary, tags.user, tags.weight,
                      tags.timestamp)
    text = ItemText({k: tuple(np.asarray(v, dtype=object)[keep_item])
                     for k, v in dataset.item_text.fields.items()})
    items = Vocabulary(tuple(np.asarray(dataset.items.ids, dtype=object)[keep_item]))
    return dataset.replace(items=items, interactions=kept, item_text=text,
                           item_attributes=ItemAttributes(None, tags)), keep_item


def write_events(path: Path, dataset, mask: np.ndarray, keep_item: np.ndarray) -> int:
    from fusionrec.data.events import Event, ItemRecord, WriteBatch, open_store

    inter = dataset.interactions
    names = dataset.item_text.fields["name"]
    new_items = tuple(ItemRecord(dataset.items.ids[i], text=names[i])
                      for i in np.flatnonzero(~keep_item))
    events = tuple(Event(dataset.users.ids[u], dataset.items.ids[i], "play", float(w))
                   for u, i, w in zip(inter.user[mask], inter.item[mask], inter.weight[mask]))
    store = open_store(str(path))
    try:
        store.write(WriteBatch(events, (), new_items))
        return store.count()
    finally:
        store.close()


def base_config(spec: Path, args):
    from fusionrec.config import RunConfig

    return RunConfig.from_dict({
        "data": {"spec": str(spec)}, "protocol": {"name": "topk-random", "seed": args.seed},
        "model": {"name": "fusion", "params": {
            "embedding_dim": 64, "sources": "all", "fusion": "concat", "source_dropout": 0.1,
            "layers": 3, "social_layers": 2, "retrieval_loss": "bpr", "hide_batch_edges": False,
            "encoder": {"model": args.encoder, "num_threads": args.threads}}},
        "trainer": {"optimizer": "adamw", "lr": 0.005, "batch_size": 8192,
                    "epochs": args.base_epochs, "patience": 3, "seed": args.seed,
                    "num_threads": args.threads},
        "evaluation": {"ks": [10, 20], "batch_size": 1024}})


def main(argv=None) -> int:
    import tempfile

    from fusionrec.cli.retrain_cmd import format_report
    from fusionrec.data.export import write_dataset
    from fusionrec.data.load import load_dataset
    from fusionrec.continual.retrain import RetrainConfig, retrain
    from fusionrec.evaluation.evaluate import evaluate
    from fusionrec.evaluation.runs import train_run

    args = parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="retrain-week-"))
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    started = time.perf_counter()
    dataset, _ = load_dataset("lastfm", data_dir=data_dir(args.data_dir))
    mask, described = pick_slice(dataset, args.slice, args.fraction,
                                 np.random.default_rng(args.seed))
    base, keep_item = base_dataset(dataset, mask)
    described.update(new_items=int((~keep_item).sum()),
                     users_in_slice=int(len(np.unique(dataset.interactions.user[mask]))))
    print(f"slice: {described}", flush=True)
    spec = write_dataset(base, work / "base_data")
    t = time.perf_counter()
    base_run = train_run(base_config(spec, args), work / "base_run", progress=False)
    base_seconds = time.perf_counter() - t
    print(f"base model: {base_run.epochs_run} epochs in {base_seconds:.0f} s, test ndcg@10 "
          f"{base_run.metrics['test']['ndcg@10']:.4f}", flush=True)
    n_events = write_events(work / "events.sqlite3", dataset, mask, keep_item)
    config = RetrainConfig(epochs=args.epochs, replay=args.replay, tolerance=args.tolerance,
                           seed=args.seed)
    result = retrain(work / "base_run", str(work / "events.sqlite3"), work / "retrained", config,
                     evaluate=evaluate, progress=False)
    print(format_report(result.report))
    load_after = os.getloadavg()
    keys = ("monitor", "events", "events_used", "new_pairs", "replay_size", "train_rows",
            "vocabulary", "warm_start", "training", "old_metrics_before", "old_metrics_after",
            "new_metrics_before", "new_metrics_after", "new_metrics_after_all",
            "new_test_pairs", "gate", "promoted", "wall_seconds")
    out = {"benchmark": "retrain_week", "data": "lastfm", "args": vars(args),
           "slice": described, "events_written": n_events,
           "base": {"epochs_run": base_run.epochs_run, "best_epoch": base_run.best_epoch,
                    "seconds": round(base_seconds, 1), "test": base_run.metrics["test"]},
           "retrain": {k: result.report[k] for k in keys},
           "total_seconds": round(time.perf_counter() - started, 1),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "loadavg_before": load_before, "loadavg_after": load_after},
           "work": str(work)}
    print(f"total {out['total_seconds']:.0f} s; load average before "
          f"{load_before[0]:.2f}, after {load_after[0]:.2f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1, default=str) + "\n")
    return 0 if result.gate.passed else 2


if __name__ == "__main__":
    sys.exit(main())
