"""Peer-library outputs scored by FusionRec's own metric code.

A peer library (implicit, cornac) never sees FusionRec: it gets the split as plain arrays
(:func:`to_arrays`, written with :mod:`fusionrec.experiments.peer_side.exchange`), trains every
point of a small grid in its own virtualenv (:mod:`fusionrec.experiments.peer_side.run_peer`)
and hands back valid and test top-K lists or per-row CTR scores. Here those outputs go through
``ranking_metrics`` / ``ctr_metrics`` (what ``evaluate`` calls for FusionRec's models) with the
run config's evaluation settings, and each peer's grid point is chosen on the **valid** part
only (:data:`MONITOR`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from fusionrec.experiments.peer_side.exchange import PartArrays, PeerOutput, SplitArrays, \
    ranked_users
from fusionrec.experiments.peer_side.run_peer import LIBRARY

#: Peer model name -> the library it comes from (what a suite's ``peer:`` may name).
PEER_LIBRARIES: dict[str, str] = dict(LIBRARY)
#: The valid metric a peer's grid point is chosen on, per task.
MONITOR = {"topk": "ndcg@10", "ctr": "auc"}
KS = (10, 20)


def to_arrays(split, dataset_name: str, source_sha256: str) -> SplitArrays:
    """A FusionRec :class:`~fusionrec.data.split.Split` as exchange arrays (internal indices)."""
    parts = {name: PartArrays(np.asarray(p.user), np.asarray(p.item), np.asarray(p.label))
             for name in ("train", "valid", "test") for p in [split.part(name)]}
    cold = split.cold
    candidates = {p: np.asarray(cold.candidates(p)) for p in ("valid", "test")
                  if cold is not None and cold.candidates(p) is not None}
    return SplitArrays(split.protocol, split.task, split.seed, dataset_name,
                       split.features.n_users, split.features.n_items, parts, source_sha256,
                       None if cold is None else cold.kind, candidates or None)


def relevant_items(split: SplitArrays, part: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """Users ranked for ``part`` (ascending) and each one's held-out positives."""
    pos = split.parts[part].positives()
    users = ranked_users(split, part)
    order = np.lexsort((pos.item, pos.user))
    starts = np.searchsorted(pos.user[order], users)
    return users, np.split(pos.item[order], starts[1:])


def topk_metrics(split: SplitArrays, part: str, users: np.ndarray, lists: np.ndarray,
                 ks: Sequence[int] = KS) -> dict[str, float]:
    """FusionRec's ``ranking_metrics`` of top-K ``lists`` (one row per user of ``users``)."""
    from fusionrec.metrics import ranking_metrics

    expected, relevant = relevant_items(split, part)
    if not np.array_equal(np.asarray(users), expected):
        raise ValueError(f"{part}: the peer ranked other users than the split's")
    candidates = (split.candidates or {}).get(part)  # coverage over them, as evaluate does
    n_items = split.n_items if candidates is None else len(candidates)
    return ranking_metrics(lists, relevant, ks=ks, n_items=n_items)


def warm_rows(split: SplitArrays, part: str) -> np.ndarray:
    """Rows of ``part`` whose user and item both have a training positive (the rows a
    collaborative model can score from what it learned; the rest fall under the cold rule)."""
    pos = split.parts["train"].positives()
    users = np.zeros(split.n_users, dtype=bool)
    items = np.zeros(split.n_items, dtype=bool)
    users[pos.user], items[pos.item] = True, True
    rows = split.parts[part]
    return users[rows.user] & items[rows.item]


def warm_auc(split: SplitArrays, part: str, scores: np.ndarray) -> dict[str, float]:
    """AUC over the warm rows only, and the share of cold rows: how much of a CTR AUC comes
    from telling cold (mostly negative) rows apart rather than from learned preferences."""
    from fusionrec.metrics import auc_score

    warm = warm_rows(split, part)
    return {"auc_warm": auc_score(split.parts[part].label[warm], np.asarray(scores)[warm]),
            "cold_rows": float(np.mean(~warm))}


def ctr_probabilities(scores: np.ndarray, score_kind: str) -> np.ndarray:
    from fusionrec.metrics import sigmoid

    return sigmoid(scores) if score_kind == "logit" else np.clip(scores, 0.0, 1.0)


def output_metrics(split: SplitArrays, output: PeerOutput, ks: Sequence[int] = KS,
                   threshold: float = 0.5, ctr_batch_size: int | None = 128
                   ) -> dict[str, dict[str, float]]:
    """``{"valid": ..., "test": ...}`` metrics of one peer output, with the settings FusionRec's
    ``evaluate`` gets from the run config (``evaluation_kwargs``)."""
    from fusionrec.metrics import ctr_metrics

    out = {}
    for part in ("valid", "test"):
        if split.task == "topk":
            out[part] = topk_metrics(split, part, output.arrays[f"{part}_users"],
                                     output.arrays[f"{part}_items"], ks)
        else:
            probs = ctr_probabilities(output.arrays[f"{part}_scores"], output.score_kind)
            rows = split.parts[part]
            out[part] = ctr_metrics(rows.label, probs, threshold=threshold,
                                    batch_size=ctr_batch_size, items=rows.item,
                                    warm_items=split.parts["train"].positives().item)
            if not np.array_equal(output.arrays[f"{part}_cold"], ~warm_rows(split, part)):
                raise ValueError(f"{output.model}: cold rows differ from the split's")
            out[part].update(warm_auc(split, part, output.arrays[f"{part}_scores"]))
    return out


def select(outputs: list[PeerOutput], scored: list[dict], monitor: str) -> dict[str, dict]:
    """Per peer model: the grid point with the best valid ``monitor`` (first one on ties)."""
    best: dict[str, dict] = {}
    for output, metrics in zip(outputs, scored):
        value = metrics["valid"][monitor]
        current = best.get(output.model)
        if current is None or value > current["valid"][monitor]:
            best[output.model] = {"library": f"{output.library} {output.version}",
                                  "params": output.params, "fit_seconds": output.fit_seconds,
                                  **metrics}
    return best
