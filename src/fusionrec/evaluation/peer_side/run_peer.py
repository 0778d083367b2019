"""Train peer-library models on a split exported by FusionRec (a ``peer:`` entry of a benchmark
suite, ``fusionrec.evaluation.peer_entry``, or ``benchmarks/peer_library.py``).

Runs under ``.venv-peer/bin/python`` (implicit and cornac, pinned in
``benchmarks/peer/requirements.txt``; no FusionRec, no torch), started by file path. For every
model and every point of its small hyper-parameter grid it writes the valid and test outputs
(top-K lists or per-row scores, see ``exchange.py``); choosing the grid point on the valid part
and computing metrics happen back in FusionRec (``fusionrec.evaluation.peers``). Usage::

    .venv-peer/bin/python src/fusionrec/evaluation/peer_side/run_peer.py --split DIR --out DIR \
        [--models ...]

Every peer trains on the training *positives* only (implicit feedback: what these libraries
model). Epoch counts are grid values taken as snapshots of one training run (implicit: its
``fit`` callback; cornac: ``fit`` again, which continues from the current factors).

Cold rule, the same for every collaborative peer: an item with no training positive, or a user
with none, has no learned factors (random init in implicit's BPR, absent in cornac). Such items
rank below every warm item, and in CTR scoring such pairs get the lowest score seen minus one.
A text-aware peer (:data:`TEXT_PEERS`: cornac's CTR) reads ``item_text.json`` and scores an item
with no training positive from its text, so the rule spares its cold items (FusionRec refuses
the collaborative peers on cold-start splits before they run, see :data:`COLD_START`). On a split
ranked among candidates (``rank_among: cold``) every list holds candidates only.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

try:  # imported by FusionRec (model names, grids) as fusionrec.evaluation.peer_side.run_peer
    from .exchange import (PeerOutput, SplitArrays, exclusion_csr, ranked_users,
                           read_item_texts, read_split, top_k_lists, write_outputs)
except ImportError:  # run as a script in the peer venv, where fusionrec is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from exchange import (PeerOutput, SplitArrays, exclusion_csr, ranked_users,  # noqa: E402
                          read_item_texts, read_split, top_k_lists, write_outputs)

FACTORS = 64
CTR_EPOCHS = 30  # CTR's coordinate-ascent sweeps (each a Python loop over users and items)
SCORE_BATCH = 256  # users scored at a time: bounds the dense (batch, n_items) matrix


@dataclass(frozen=True)
class Snapshot:
    """A trained state, live: the grid point it stands for and how to score with it."""

    params: dict
    fit_seconds: float
    score_rows: Callable[[np.ndarray], np.ndarray]               # users -> (n, n_items)
    score_pairs: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (users, items) -> (n,)


#: turns a live snapshot into its valid/test output arrays (see :func:`make_emitter`)
Emit = Callable[[Snapshot], dict]
Result = tuple[dict, float, dict]  # (params, fit seconds, output arrays)


def train_matrix(split: SplitArrays):
    import scipy.sparse as sp

    pos = split.parts["train"].positives()
    matrix = sp.csr_matrix((np.ones(len(pos.user), np.float32), (pos.user, pos.item)),
                           shape=(split.n_users, split.n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


# ---- implicit ------------------------------------------------------------------------------

def implicit_runs(kind: str, matrix, grid: list[dict], epochs: list[int], seed: int,
                  emit: Emit) -> list[Result]:
    """implicit's BPR (``kind="bpr"``) or ALS over ``grid``; one fit per grid point, outputs
    taken after each epoch count in ``epochs``."""
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    results: list[Result] = []
    for params in grid:
        cls = BayesianPersonalizedRanking if kind == "bpr" else AlternatingLeastSquares
        model = cls(factors=FACTORS, iterations=max(epochs), num_threads=1, random_state=seed,
                    **params)
        # implicit's recommend() ranks by user_factors . item_factors (BPR: the last item
        # column is the item bias, the users' is 1); score the same way for every item
        rows = lambda users, m=model: np.asarray(m.user_factors)[users] @ \
            np.asarray(m.item_factors).T  # noqa: E731
        pairs = lambda users, items, m=model: np.einsum(  # noqa: E731
            "nf,nf->n", np.asarray(m.user_factors)[users], np.asarray(m.item_factors)[items])
        clock = {"fit": 0.0, "since": time.perf_counter()}

        def callback(iteration, *_, params=params, rows=rows, pairs=pairs, clock=clock):
            # runs inside fit after epoch ``iteration`` (0-based): score now, since later
            # epochs overwrite the factors in place
            clock["fit"] += time.perf_counter() - clock["since"]
            if iteration + 1 in epochs:
                point = {**params, "epochs": iteration + 1}
                results.append((point, clock["fit"],
                                emit(Snapshot(point, clock["fit"], rows, pairs))))
            clock["since"] = time.perf_counter()

        model.fit(matrix, show_progress=False, callback=callback)
    return results


# ---- cornac --------------------------------------------------------------------------------

def cornac_bpr_runs(split: SplitArrays, grid: list[dict], epochs: list[int], seed: int,
                    emit: Emit) -> list[Result]:
    """cornac's BPR over ``grid``; calling ``fit`` again continues from the current factors
    (cornac only initialises factors that are unset), so epoch counts are snapshots too."""
    import cornac
    from cornac.data import Dataset

    pos = split.parts["train"].positives()
    triples = [(str(u), str(i), 1.0) for u, i in zip(pos.user.tolist(), pos.item.tolist())]
    train_set = Dataset.from_uir(triples, seed=seed)
    # cornac re-indexes users/items in order of appearance: map FusionRec indices to its own
    user_inner = np.full(split.n_users, -1, dtype=np.int64)
    for raw, idx in train_set.uid_map.items():
        user_inner[int(raw)] = idx
    item_cols = np.array([int(raw) for raw in train_set.iid_map], dtype=np.int64)
    item_inner = np.full(split.n_items, -1, dtype=np.int64)
    item_inner[item_cols] = np.array(list(train_set.iid_map.values()), dtype=np.int64)

    def rows(users, model):
        out = np.full((len(users), split.n_items), np.nan, dtype=np.float32)
        for r, u in enumerate(users):
            if user_inner[u] >= 0:
                scores = model.score(int(user_inner[u]))  # every known item, cornac's order
                out[r, item_cols] = scores[item_inner[item_cols]]
        return out

    def pairs(users, items, model):
        out = np.full(len(users), np.nan)
        for r, (u, i) in enumerate(zip(users, items)):
            if user_inner[u] >= 0 and item_inner[i] >= 0:
                out[r] = model.score(int(user_inner[u]), int(item_inner[i]))
        return out

    results: list[Result] = []
    for params in grid:
        model = cornac.models.BPR(k=FACTORS, num_threads=1, seed=seed, verbose=False, **params)
        done, fit_seconds = 0, 0.0
        for target in sorted(epochs):
            model.max_iter = target - done
            started = time.perf_counter()
            with warnings.catch_warnings():  # "already fitted": continuing is the point here
                warnings.filterwarnings("ignore", message="Model is already fitted")
                model.fit(train_set)
            fit_seconds += time.perf_counter() - started
            done = target
            point = {**params, "epochs": target}
            snapshot = Snapshot(point, fit_seconds, lambda u, m=model: rows(u, m),
                                lambda u, i, m=model: pairs(u, i, m))
            results.append((point, fit_seconds, emit(snapshot)))
    return results


def cornac_ctr_runs(split: SplitArrays, texts: list[str], grid: list[dict], epochs: list[int],
                    seed: int, emit: Emit) -> list[Result]:
    """cornac's Collaborative Topic Regression (Wang & Blei 2011) over ``grid``: LDA topics of
    each item's text pull its factors towards them, so an item with no training positive gets
    factors from its text alone (the paper's out-of-matrix prediction). Every item is in
    cornac's index (cold ones as empty columns) so that its topics are fitted too. Each epoch
    count is its own fit: cornac's ``fit`` re-draws the topic model, so it cannot continue."""
    import cornac
    from cornac.data import Dataset, TextModality
    from cornac.data.text import BaseTokenizer

    pos = split.parts["train"].positives()
    ids = lambda n: {str(x): x for x in range(n)}  # noqa: E731  (cornac index = FusionRec's)
    results: list[Result] = []
    for params in grid:
        for target in epochs:
            train_set = Dataset(split.n_users, split.n_items, ids(split.n_users),
                                ids(split.n_items),
                                (pos.user, pos.item, np.ones(len(pos.user))), seed=seed)
            text = TextModality(corpus=texts, ids=[str(i) for i in range(split.n_items)],
                                tokenizer=BaseTokenizer(stop_words="english"),
                                max_vocab=8000, max_doc_freq=0.5)
            text.build(id_map=train_set.iid_map)
            train_set.add_modalities(item_text=text)
            model = cornac.models.CTR(k=FACTORS, max_iter=target, seed=seed, verbose=False,
                                      **params)
            started = time.perf_counter()
            model.fit(train_set)
            fit_seconds = time.perf_counter() - started
            point = {**params, "epochs": target}
            rows = lambda users, m=model: np.asarray(m.U)[users] @ np.asarray(m.V).T  # noqa
            pairs = lambda users, items, m=model: np.einsum(  # noqa: E731
                "nf,nf->n", np.asarray(m.U)[users], np.asarray(m.V)[items])
            results.append((point, fit_seconds,
                            emit(Snapshot(point, fit_seconds, rows, pairs))))
    return results


# ---- outputs -------------------------------------------------------------------------------

def make_emitter(split: SplitArrays, k: int, scores_cold_items: bool = False) -> Emit:
    """Top-K lists (top-K splits) or per-row scores (CTR splits) of a snapshot, valid and test,
    with the cold rule of the module docstring applied (to users only when the peer
    ``scores_cold_items`` from their text) and, on a split ranked among candidates, every other
    item excluded."""
    matrix = train_matrix(split)
    trained_items = np.asarray(matrix.sum(axis=0)).ravel() > 0
    warm_items = trained_items | scores_cold_items  # items the peer has a score for
    warm_users = np.asarray(matrix.sum(axis=1)).ravel() > 0
    exclusions = {p: exclusion_csr(split, p) for p in ("valid", "test")}
    outside = {p: None for p in ("valid", "test")}
    for part, items in (split.candidates or {}).items():
        outside[part] = np.setdiff1d(np.arange(split.n_items), items)

    def topk(snapshot: Snapshot, part: str) -> dict:
        users = ranked_users(split, part)
        lists = []
        for start in range(0, len(users), SCORE_BATCH):
            batch = users[start:start + SCORE_BATCH]
            scores = np.array(snapshot.score_rows(batch), dtype=np.float32)
            cold = ~warm_items[None, :] | ~warm_users[batch][:, None] | np.isnan(scores)
            scores[cold] = np.finfo(np.float32).min  # below every warm item, above excluded
            if outside[part] is not None:
                scores[:, outside[part]] = -np.inf   # not a candidate: never listed
            lists.append(top_k_lists(scores, batch, exclusions[part], k))
        return {f"{part}_users": users, f"{part}_items": np.concatenate(lists)}

    def ctr(snapshot: Snapshot) -> dict:
        scored = {}
        for part in ("valid", "test"):
            rows = split.parts[part]
            scores = np.asarray(snapshot.score_pairs(rows.user, rows.item), dtype=np.float64)
            cold = ~warm_items[rows.item] | ~warm_users[rows.user] | np.isnan(scores)
            # the rows with no training positive, whether or not the peer scores them
            unseen = ~trained_items[rows.item] | ~warm_users[rows.user]
            scored[part] = (scores, cold, unseen | cold)
        floor = min(np.min(s[~c], initial=0.0) for s, c, _ in scored.values())
        out = {}
        for part, (scores, cold, unseen) in scored.items():
            out[f"{part}_scores"] = np.where(cold, floor - 1.0, scores)
            out[f"{part}_cold"] = unseen
        return out

    def emit(snapshot: Snapshot) -> dict:
        if split.task == "topk":
            return {**topk(snapshot, "valid"), **topk(snapshot, "test")}
        return ctr(snapshot)

    return emit


GRIDS = {
    # task -> model -> (hyper-parameter grid, epoch snapshots); the point is chosen on the
    # valid part by FusionRec (fusionrec.evaluation.peers). Top-K grids were widened where a first run picked an edge
    # (cornac: larger lr and epochs; implicit BPR: smaller lr; ALS: stronger regularisation and
    # confidence). CTR data is small (12.7k training positives), so its grids are wider.
    "topk": {
        "implicit-bpr": ([{"learning_rate": lr, "regularization": reg}
                          for lr in (0.003, 0.01) for reg in (0.001, 0.01)],
                         [50, 100, 200, 400]),
        "implicit-als": ([{"regularization": reg, "alpha": alpha}
                          for reg in (3.0, 10.0, 30.0) for alpha in (10.0, 40.0)], [10, 20]),
        "cornac-bpr": ([{"learning_rate": lr, "lambda_reg": reg}
                        for lr in (0.05, 0.1) for reg in (0.01, 0.03)], [200, 400, 800]),
        # lambda_v: how strongly an item's factors are tied to its text's topics (the paper
        # uses 100); lambda_u at the paper's 0.01. Widened upwards: on ML-100K cold items
        # (seed 0) valid NDCG@10 was 0.069, 0.105, 0.132, 0.140 at 10, 100, 1000, 10000,
        # flattening at the top edge
        "cornac-ctr": ([{"lambda_u": 0.01, "lambda_v": lv} for lv in (100.0, 1000.0, 10000.0)],
                       [CTR_EPOCHS]),
    },
    "ctr": {
        "implicit-bpr": ([{"learning_rate": lr, "regularization": reg}
                          for lr in (0.003, 0.01, 0.03) for reg in (0.01, 0.03, 0.1)],
                         [100, 200, 400, 800]),
        "implicit-als": ([{"regularization": reg, "alpha": alpha}
                          for reg in (10.0, 30.0, 100.0) for alpha in (3.0, 10.0, 40.0)],
                         [10, 20]),
        "cornac-bpr": ([{"learning_rate": lr, "lambda_reg": reg}
                        for lr in (0.05, 0.1) for reg in (0.03, 0.1, 0.3)], [400, 800, 1600]),
        "cornac-ctr": ([{"lambda_u": 0.01, "lambda_v": lv} for lv in (100.0, 1000.0, 10000.0)],
                       [CTR_EPOCHS]),
    },
}
MODELS = tuple(GRIDS["topk"])
SCORE_KIND = {"implicit-bpr": "logit", "implicit-als": "preference", "cornac-bpr": "logit",
              "cornac-ctr": "preference"}
LIBRARY = {"implicit-bpr": "implicit", "implicit-als": "implicit", "cornac-bpr": "cornac",
           "cornac-ctr": "cornac"}
#: Peers that read ``item_text.json`` (FusionRec exports it for these only).
TEXT_PEERS = ("cornac-ctr",)
#: What a peer can score with no training interaction (as a FusionRec model's ``cold_start``).
COLD_START = {"cornac-ctr": ("items",)}


def run(split: SplitArrays, models: list[str], k: int, seed: int,
        texts: list[str] | None = None) -> list[PeerOutput]:
    from importlib.metadata import version

    matrix = train_matrix(split)
    outputs: list[PeerOutput] = []
    for name in models:
        grid, epochs = GRIDS[split.task][name]
        emit = make_emitter(split, k, scores_cold_items="items" in COLD_START.get(name, ()))
        started = time.perf_counter()
        if name == "cornac-bpr":
            results = cornac_bpr_runs(split, grid, epochs, seed, emit)
        elif name == "cornac-ctr":
            if texts is None:
                raise ValueError("cornac-ctr needs the item texts (item_text.json)")
            results = cornac_ctr_runs(split, texts, grid, epochs, seed, emit)
        else:
            results = implicit_runs(name.split("-")[1], matrix, grid, epochs, seed, emit)
        outputs += [PeerOutput(name, LIBRARY[name], version(LIBRARY[name]), params,
                               SCORE_KIND[name], seconds, arrays)
                    for params, seconds, arrays in results]
        print(f"{name}: {len(results)} grid points in {time.perf_counter() - started:.1f}s",
              flush=True)
    return outputs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", required=True, help="folder written by exchange.write_split")
    parser.add_argument("--out", required=True, help="folder for the outputs")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--k", type=int, default=20, help="top-K list length")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from importlib.metadata import version

    split = read_split(args.split)
    texts = (read_item_texts(args.split, split.n_items)
             if set(args.models) & set(TEXT_PEERS) else None)
    outputs = run(split, args.models, args.k, args.seed, texts)
    environment = {"python": platform.python_version(), "numpy": np.__version__,
                   **{lib: version(lib) for lib in sorted(set(LIBRARY.values()))},
                   "threads": {v: os.environ.get(v) for v in
                               ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
                   "factors": FACTORS, "seed": args.seed, "k": args.k}
    write_outputs(args.out, outputs, environment)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
