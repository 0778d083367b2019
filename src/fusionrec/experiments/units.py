"""Per-unit test values of a fitted model, for paired comparisons of runs on one split.

A *unit* is what a paired test resamples:

- top-K: one evaluated user (a user with a held-out positive), with ``ndcg@K`` and
  ``recall@K`` for every cut-off; their means are exactly what ``evaluate`` reports;
- CTR: one test row (user, item, label, predicted probability); AUC is not a mean over rows,
  so comparisons resample rows and recompute it.

Saved as ``test_units.safetensors`` in the run folder (arrays + a small string header).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from fusionrec.data.split import Split
from fusionrec.metrics import _hit_matrix

UNITS_FILE = "test_units.safetensors"


@dataclass(frozen=True)
class UnitValues:
    """``task``: ``"topk"`` (keys ``user``, ``ndcg@K``, ``recall@K``) or ``"ctr"`` (keys
    ``user``, ``item``, ``label``, ``prob``); every array has one entry per unit."""

    task: str
    part: str
    arrays: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        if self.task not in ("topk", "ctr"):
            raise ValueError(f"UnitValues.task must be topk or ctr, got {self.task!r}")
        lengths = {name: len(a) for name, a in self.arrays.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"UnitValues arrays differ in length: {lengths}")
        object.__setattr__(self, "arrays", {k: np.asarray(v) for k, v in self.arrays.items()})

    def __len__(self) -> int:
        return len(self.arrays["user"])

    def save(self, run_dir: str | Path) -> Path:
        from safetensors.numpy import save_file

        path = Path(run_dir) / UNITS_FILE
        save_file({k: np.ascontiguousarray(v) for k, v in self.arrays.items()}, str(path),
                  metadata={"task": self.task, "part": self.part})
        return path

    @classmethod
    def load(cls, run_dir: str | Path) -> "UnitValues":
        from safetensors import safe_open

        path = Path(run_dir) / UNITS_FILE
        with safe_open(str(path), framework="numpy") as handle:
            meta = handle.metadata() or {}
            arrays = {key: handle.get_tensor(key) for key in handle.keys()}
        return cls(meta.get("task", "topk"), meta.get("part", "test"), arrays)


def ranking_rows(recommended: np.ndarray, relevant: Sequence[np.ndarray], k: int
                 ) -> dict[str, np.ndarray]:
    """Per-row ``ndcg@k`` and ``recall@k`` (``ranking_metrics``' definitions) for rows with at
    least one relevant item; the caller keeps only such rows."""
    rec = np.asarray(recommended, dtype=np.int64)
    rel = [np.unique(np.asarray(r, dtype=np.int64)) for r in relevant]
    n_rel = np.array([r.size for r in rel], dtype=np.float64)
    hits = _hit_matrix(rec, rel)[:, :k]  # (n, <=k) bool
    discount = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    dcg = (hits * discount[:hits.shape[1]]).sum(axis=1)
    idcg = np.cumsum(discount)[np.minimum(n_rel, k).astype(np.int64) - 1]
    return {f"ndcg@{k}": dcg / idcg, f"recall@{k}": hits.sum(axis=1) / n_rel}


def unit_values(model, split: Split, part: str = "test", ks: Sequence[int] = (10, 20),
                batch_size: int = 1024) -> UnitValues:
    """The per-unit values of ``model`` on ``split.part(part)`` (see the module docstring)."""
    from fusionrec.evaluation.evaluate import ctr_probabilities, ranked_lists

    pairs = split.part(part)
    if split.task == "ctr":
        return UnitValues("ctr", part, {"user": pairs.user, "item": pairs.item,
                                        "label": pairs.label.astype(np.float64),
                                        "prob": ctr_probabilities(model, pairs)})
    users, recommended, relevant = ranked_lists(model, split, part, max(ks), batch_size)
    arrays: dict[str, np.ndarray] = {"user": users}
    keep = np.array([len(r) > 0 for r in relevant], dtype=bool)
    for k in ks:
        arrays.update(ranking_rows(recommended, relevant, int(k)))
    return UnitValues("topk", part, {name: values[keep] for name, values in arrays.items()})


def write_run_units(run_dir: str | Path, data_dir: str | None = None) -> Path:
    """Reopen a finished run folder and save its test units next to it."""
    from fusionrec.training import artifacts
    from fusionrec.training.run import load_run_split

    config, manifest, model = artifacts.open_run(run_dir)
    _, split = load_run_split(run_dir, config, manifest, data_dir)
    ev = config.evaluation
    return unit_values(model, split, "test", ev.ks, ev.batch_size).save(run_dir)
