"""Reranking on Last.FM ``topk-random``: a retrieval model's top-N, reordered by the cross-encoder.

    python benchmarks/rerank.py                        # bpr-mf retrieval, every test user
    python benchmarks/rerank.py --users 50             # smoke: 50 test users
    python benchmarks/rerank.py --retrieval fusion     # configs/lastfm-topk.yaml retrieves
    python benchmarks/rerank.py --retrieval-run RUN    # a trained run folder retrieves
    python benchmarks/rerank.py --blend 0 0.3 0.5 --pairs 3000 --set epochs=3

Steps: (1) train the retrieval model from its run config (default
configs/lastfm-topk-bprmf.yaml: preset lastfm, per-user random 8:1:1 split, seed 0); (2) train
the cross-encoder on ``--pairs`` training positives, each with one negative (``retrieved``: a
random item of the user's retrieved top-N that is not a training item -- the hard negatives the
reranker must tell apart at test time; ``random``: a uniformly drawn unseen item) and select it
on as many validation pairs; its prompts and histories read the split's training interactions
only; (3) on the test users (``--users N``: a seeded sample), NDCG@10 / Recall@10 of the
retrieval top-10 and of the reranked top-N (``--blend``: weight of the retrieval rank, see
``fusionrec.models.rerank``), with the split's usual exclusions (training items, and validation
items on the test part); recall@N is the ceiling any reordering can reach; (4) the latency per
user of retrieval and of reranking its N candidates, median over ``--latency-users`` single-user
requests. Prints a table and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
RETRIEVAL_CONFIGS = {"bpr-mf": REPO / "configs" / "lastfm-topk-bprmf.yaml",
                     "fusion": REPO / "configs" / "lastfm-topk.yaml"}
#: The cross-encoder's settings (``--set key=value`` changes one).
CROSS_ENCODER = {"model": "all-MiniLM-L6-v2", "mode": "lora", "head": "hybrid",
                 "item_noun": "artist", "prompt_sources": ["history", "social", "item", "tags"],
                 "side_features": ["positivity", "similarity", "quality", "shot_prior"],
                 "augment": False, "max_length": 128, "item_budget": 32, "lr": 5e-4,
                 "epochs": 2, "batch_size": 16, "patience": 1, "valid_rows": 256,
                 "precision": "auto", "num_threads": 1, "progress": False}


class CachedScores:
    """``score`` of a model, remembered per (user, item): the blends share one scoring pass."""

    def __init__(self, model, n_items: int) -> None:
        self.model, self.n_items, self.cache = model, n_items, {}

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = (np.asarray(users, np.int64) * self.n_items + np.asarray(items, np.int64)).tolist()
        missing = sorted({k for k in keys if k not in self.cache})
        if missing:
            m = np.asarray(missing, dtype=np.int64)
            self.cache.update(zip(missing, np.asarray(
                self.model.score(m // self.n_items, m % self.n_items), dtype=np.float64).tolist()))
        return np.array([self.cache[k] for k in keys], dtype=np.float64)


def negatives(pairs, features, retriever, n: int, how: str, seed: int):
    """One negative per row of ``pairs`` (see the module docstring)."""
    from fusionrec.data.split import Pairs
    from fusionrec.models.cross_encoder.recommender import with_negatives

    if how == "random":
        both = with_negatives(pairs, features, seed)
        return Pairs(both.user[len(pairs):], both.item[len(pairs):], both.label[len(pairs):])
    users = np.unique(pairs.user)
    items, scores = retriever.recommend(users, k=n, exclude_seen=True)
    row_of = {int(u): r for r, u in enumerate(users)}
    rng = np.random.default_rng([seed, 3])
    picked = []
    for user in pairs.user:
        row = row_of[int(user)]
        pool = np.asarray(items[row])[np.isfinite(scores[row])]
        picked.append(int(rng.choice(pool)))
    return Pairs(pairs.user, np.asarray(picked), np.zeros(len(pairs), np.float32))


def labelled(part, count: int, features, retriever, n: int, how: str, seed: int):
    """``count`` positives of ``part`` (seeded sample) plus one negative each."""
    from fusionrec.data.split import Pairs

    rows = np.sort(np.random.default_rng(seed).permutation(len(part))[:count])
    pos = part.take(rows)
    neg = negatives(pos, features, retriever, n, how, seed)
    return Pairs(np.r_[pos.user, neg.user], np.r_[pos.item, neg.item],
                 np.r_[np.ones(len(pos)), np.zeros(len(neg))])


def latency(reranker, users: np.ndarray, k: int) -> dict:
    """Median milliseconds per single-user request: retrieval, and reranking its candidates."""
    retrieve_ms, rerank_ms = [], []
    for user in users:
        started = time.perf_counter()
        items, scores = reranker.retrieve(np.array([user]))
        middle = time.perf_counter()
        reranker.rerank(np.array([user]), items, scores, k)
        retrieve_ms.append(1000 * (middle - started))
        rerank_ms.append(1000 * (time.perf_counter() - middle))
    return {"users": len(users), "retrieval_ms_median": round(statistics.median(retrieve_ms), 2),
            "rerank_ms_median": round(statistics.median(rerank_ms), 2),
            "rerank_ms_p90": round(float(np.percentile(rerank_ms, 90)), 2)}


def table(result: dict) -> str:
    lines = [f"{'ranking':<28}{'ndcg@10':>10}{'recall@10':>11}{'delta ndcg':>12}"]
    base = result["retrieval"]
    for row in [{"name": f"{result['retriever']} (retrieval)", **base}] + result["reranked"]:
        lines.append(f"{row['name']:<28}{row['ndcg@10']:>10.4f}{row['recall@10']:>11.4f}"
                     f"{row['ndcg@10'] - base['ndcg@10']:>+12.4f}")
    lat, n = result["latency"], result["candidates"]
    lines.append(f"test users {result['test_users']}; recall@{n} of the candidates "
                 f"{base['recall@' + str(n)]:.4f} (the ceiling); "
                 f"latency per user: retrieval {lat['retrieval_ms_median']} ms, reranking "
                 f"+{lat['rerank_ms_median']} ms (median of {lat['users']}, p90 "
                 f"{lat['rerank_ms_p90']} ms)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--retrieval", choices=sorted(RETRIEVAL_CONFIGS), default="bpr-mf")
    parser.add_argument("--retrieval-config", help="run config of the retrieval model "
                                                   "(overrides --retrieval)")
    parser.add_argument("--retrieval-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override in the retrieval config, e.g. trainer.epochs=20")
    parser.add_argument("--retrieval-run", help="trained run folder (fusionrec train --out) to "
                        "retrieve with, instead of training one; its own split is used")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--candidates", type=int, default=50, help="N retrieved per user")
    parser.add_argument("--blend", type=float, nargs="+", default=[0.0, 0.5])
    parser.add_argument("--pairs", type=int, default=2000, help="training positives (each "
                                                               "gets one negative)")
    parser.add_argument("--valid-pairs", type=int, default=500)
    parser.add_argument("--negatives", choices=("retrieved", "random"), default="retrieved")
    parser.add_argument("--users", type=int, default=0, help="test users (0: all)")
    parser.add_argument("--latency-users", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a cross-encoder parameter (YAML value)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" /
                                             "rerank-lastfm.json"))
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)

    import yaml

    from fusionrec.config import load_config
    from fusionrec.data.split import Split
    from fusionrec.evaluation.evaluate import evaluate
    from fusionrec.models.cross_encoder.recommender import CrossEncoderRecommender
    from fusionrec.models.rerank import RerankConfig, Reranker
    from fusionrec.training.run import build_model, load_data, make_split
    from fusionrec.training.trainer import Trainer

    config_path = Path(args.retrieval_config or RETRIEVAL_CONFIGS[args.retrieval])
    if not args.retrieval_run and not config_path.is_file():
        parser.error(f"retrieval config {config_path} not found; pass --retrieval-config")
    overrides = dict(CROSS_ENCODER)
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    started = time.perf_counter()
    if args.retrieval_run:  # a trained run: its model and the split it was trained on
        from fusionrec.training.artifacts import open_run
        from fusionrec.training.run import load_run_split

        config_path = Path(args.retrieval_run)
        config, manifest, retriever = open_run(config_path)
        dataset, split = load_run_split(config_path, config, manifest, args.data_dir)
    else:
        config = load_config(config_path, args.retrieval_set)
        dataset = load_data(config.data, args.data_dir).dataset
        split = make_split(dataset, config.protocol)
    if split.task != "topk":
        parser.error(f"{config_path}: reranking needs a top-K protocol, got {split.protocol}")
    if not args.retrieval_run:
        retriever = build_model(config)
        Trainer(config.trainer, evaluate=evaluate,
                evaluation=config.evaluation, progress=args.progress).fit(
            retriever, split)
    retrieval_s = time.perf_counter() - started
    print(f"retrieval {config.model.name} ready in {retrieval_s:.0f}s", flush=True)

    started = time.perf_counter()
    features, n = split.features, args.candidates
    train = labelled(split.train, args.pairs, features, retriever, n, args.negatives, args.seed)
    valid = labelled(split.valid, args.valid_pairs, features, retriever, n, args.negatives,
                     args.seed + 1)
    ce_split = Split(split.protocol, "ctr", split.seed, train, valid, valid.take(np.zeros(0, int)),
                     features, dict(split.params))
    runner = functools.partial(Trainer, evaluate=evaluate, progress=args.progress)
    cross_encoder = CrossEncoderRecommender(**{**overrides, "seed": args.seed},
                                            runner=runner).fit(ce_split)
    ce_s = time.perf_counter() - started
    print(f"cross-encoder trained on {len(train)} pairs in {ce_s:.0f}s "
          f"(best valid AUC {cross_encoder.summary_['best_valid_auc']})", flush=True)

    users = np.unique(split.test.user)
    if args.users:
        users = np.sort(np.random.default_rng(args.seed).permutation(users)[:args.users])
    test = split.test.take(np.flatnonzero(np.isin(split.test.user, users)))
    sub = dataclasses.replace(split, test=test)
    ks = (10, n)
    started = time.perf_counter()
    before = evaluate(retriever, sub, "test", ks=ks)
    cached = CachedScores(cross_encoder, features.n_items)
    reranked = []
    for blend in args.blend:
        model = Reranker(retriever, cached, RerankConfig(candidates=n, blend=blend))
        metrics = evaluate(model, sub, "test", ks=(10,), batch_size=64)
        reranked.append({"name": f"reranked, blend {blend:g}", "blend": blend, **metrics})
    eval_s = time.perf_counter() - started
    timing_users = users[:args.latency_users]
    lat = latency(Reranker(retriever, cross_encoder, RerankConfig(candidates=n)),
                  timing_users, 10)
    result = {
        "dataset": dataset.name, "protocol": split.protocol, "seed": split.seed,
        "retriever": config.model.name, "retrieval_config": str(config_path),
        "candidates": n, "negatives": args.negatives, "train_pairs": len(train),
        "valid_pairs": len(valid), "test_users": int(len(users)),
        "cross_encoder": overrides, "cross_encoder_summary": {
            k: cross_encoder.summary_.get(k) for k in ("best_epoch", "best_valid_auc",
                                                        "epochs_run", "train_seconds")},
        "retrieval": before, "reranked": reranked, "latency": lat,
        "seconds": {"retrieval_train": round(retrieval_s, 1), "cross_encoder_train":
                    round(ce_s, 1), "evaluation": round(eval_s, 1)},
        "machine": {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in
                                                             os.getloadavg()],
                    "python": platform.python_version()}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(table(result))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
