"""Paired comparisons of named rows of a benchmark suite, with what each row cost to train.

A suite opts in with a ``compare`` section naming pairs of entries (run-folder names)::

    compare:
      metric: ndcg@10            # default: auc (CTR) or ndcg@<first k> (top-K)
      confidence: 0.95
      n_boot: 2000
      pairs:
        - {a: fusion, b: fusion-hashing}   # reported as "fusion-hashing vs fusion": B - A

Each pair is compared on the seeds both rows ran, paired within a seed on the same test users
(or CTR rows) of the same split, through the per-unit test values in the run folders
(:mod:`fusionrec.experiments.units`, statistics in :mod:`fusionrec.experiments.paired`). Every
row named in a pair also gets its training cost from its run folders: wall seconds of the whole
run (data, training, evaluation), the epochs trained and the mean seconds per epoch (one pass
over the training batches plus validation, from ``metrics.jsonl``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from fusionrec.config import ConfigError
from fusionrec.experiments.ablation import compare, default_metric
from fusionrec.experiments.paired import PairedDelta

COMPARE_FILE = "compare.json"


@dataclass(frozen=True)
class ComparePair:
    """``b`` against ``a``: the delta is ``b - a``."""

    a: str
    b: str


@dataclass(frozen=True)
class CompareSpec:
    pairs: tuple[ComparePair, ...]
    metric: str | None = None
    confidence: float = 0.95
    n_boot: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.pairs:
            raise ConfigError("compare.pairs must name at least one pair {a: ..., b: ...}")
        if not 0 < self.confidence < 1:
            raise ConfigError(f"compare.confidence must be in (0, 1), got {self.confidence!r}")
        if not isinstance(self.n_boot, int) or self.n_boot < 100:
            raise ConfigError(f"compare.n_boot must be an int >= 100, got {self.n_boot!r}")

    @property
    def entries(self) -> tuple[str, ...]:
        """Every entry a pair names, in order of first mention."""
        return tuple(dict.fromkeys(name for p in self.pairs for name in (p.a, p.b)))

    @classmethod
    def from_raw(cls, raw: Any) -> "CompareSpec":
        if not isinstance(raw, Mapping) or not isinstance(raw.get("pairs"), list):
            raise ConfigError(f"compare must be a mapping with a list of pairs, got {raw!r}")
        known = {"pairs", "metric", "confidence", "n_boot", "seed"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"compare: unknown key(s) {unknown}; known: {sorted(known)}")
        pairs = []
        for i, pair in enumerate(raw["pairs"]):
            if not isinstance(pair, Mapping) or set(pair) != {"a", "b"} \
                    or not all(isinstance(pair[k], str) and pair[k] for k in ("a", "b")) \
                    or pair["a"] == pair["b"]:
                raise ConfigError(f"compare.pairs[{i}] must be {{a: entry, b: other entry}}, "
                                  f"got {pair!r}")
            pairs.append(ComparePair(pair["a"], pair["b"]))
        return cls(tuple(pairs), **{k: raw[k] for k in known - {"pairs"} if k in raw})


@dataclass(frozen=True)
class RowCost:
    """Means over the row's successful seeds (``None`` where no run folder said)."""

    entry: str
    seeds: int
    wall_seconds: float | None
    epochs: float | None
    seconds_per_epoch: float | None

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class PairRow:
    """One pair: per-seed test values of both rows, and the paired delta (``None`` plus a
    ``note`` when it could not be computed)."""

    a: str
    b: str
    per_seed_a: Mapping[int, float]
    per_seed_b: Mapping[int, float]
    result: PairedDelta | None
    note: str = ""

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b,
                "per_seed_a": {str(s): v for s, v in self.per_seed_a.items()},
                "per_seed_b": {str(s): v for s, v in self.per_seed_b.items()},
                "result": self.result.to_dict() if self.result else None, "note": self.note}


@dataclass(frozen=True)
class Comparison:
    metric: str
    pairs: tuple[PairRow, ...]
    costs: tuple[RowCost, ...]

    def to_dict(self) -> dict:
        return {"metric": self.metric, "pairs": [p.to_dict() for p in self.pairs],
                "costs": [c.to_dict() for c in self.costs]}


def epoch_cost(run_dir: str | Path) -> tuple[int, float] | None:
    """``(epochs trained, mean seconds per epoch)`` from a run folder's ``metrics.jsonl``
    (epoch 0, the validation of the built weights, is not an epoch)."""
    from fusionrec.training.tracking import METRICS_FILE

    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return None
    seconds = [r["seconds"] for r in map(json.loads, path.read_text().splitlines())
               if r.get("epoch", 0) >= 1 and "seconds" in r]
    return (len(seconds), float(np.mean(seconds))) if seconds else None


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def run_comparison(spec: CompareSpec, records: Sequence[Mapping[str, Any]],
                   folders: Sequence[str], load_units: Callable[[str, int], Any],
                   run_dir: Callable[[str, int], Path] | None = None) -> Comparison:
    """The suite's pairs over ``records`` (``folders[i]``: run-folder name of record ``i``);
    ``load_units(folder, seed)`` gives a run's ``UnitValues`` or None, ``run_dir(folder,
    seed)`` its folder (for epoch costs)."""
    by_folder: dict[str, dict[int, Mapping[str, Any]]] = {}
    for record, folder in zip(records, folders, strict=True):
        if "error" not in record:
            by_folder.setdefault(folder, {})[record["seed"]] = record

    def units_of(folder: str) -> dict[int, Any]:
        found = {s: load_units(folder, s) for s in by_folder.get(folder, {})}
        return {s: u for s, u in found.items() if u is not None}

    units = {name: units_of(name) for name in spec.entries}
    first = next((u for found in units.values() for u in found.values()), None)
    metric = default_metric(spec.metric, first.task, first) if first is not None \
        else (spec.metric or "ndcg@10")
    rows = []
    for pair in spec.pairs:
        per_seed = [{s: r["metrics"][metric] for s, r in sorted(by_folder.get(name, {}).items())
                     if metric in r["metrics"]} for name in (pair.a, pair.b)]
        missing = [name for name in (pair.a, pair.b) if not units[name]]
        if missing:
            result, note = None, f"no per-unit values for {', '.join(missing)}"
        else:
            result, _, note = compare(spec, units[pair.a], units[pair.b], metric)
        rows.append(PairRow(pair.a, pair.b, per_seed[0], per_seed[1], result, note))
    costs = []
    for name in spec.entries:
        runs = by_folder.get(name, {})
        epochs = [c for c in (epoch_cost(run_dir(name, s)) for s in runs) if c] \
            if run_dir else []
        costs.append(RowCost(name, len(runs), _mean([r["wall_seconds"] for r in runs.values()]),
                             _mean([c[0] for c in epochs]), _mean([c[1] for c in epochs])))
    return Comparison(metric, tuple(rows), tuple(costs))


def _num(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def comparison_lines(comparison: Comparison) -> list[str]:
    """The report's markdown section: per-seed values and paired deltas, then the costs."""
    m = comparison.metric
    pct = next((round(100 * p.result.confidence) for p in comparison.pairs if p.result), 95)
    seeds = sorted({s for p in comparison.pairs for s in (*p.per_seed_a, *p.per_seed_b)})
    lines = ["## Paired comparisons", "",
             f"B vs A: test {m} of B minus that of A, mean over the seeds both ran of the "
             f"per-seed mean difference over the same test units (users, or CTR rows) of the "
             f"same split; {pct}% CI by paired bootstrap over units, p by paired randomisation "
             "test (DeLong for AUC).", "",
             f"| B vs A | {m} A | {m} B | B − A [{pct}% CI] | p | units × seeds | "
             + " | ".join(f"seed {s}: A / B" for s in seeds) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(seeds)]
    for p in comparison.pairs:
        cells = [f"{_num(p.per_seed_a.get(s), 4)} / {_num(p.per_seed_b.get(s), 4)}"
                 for s in seeds]
        shared = [s for s in seeds if s in p.per_seed_a and s in p.per_seed_b]
        mean_a = _mean([p.per_seed_a[s] for s in shared])
        mean_b = _mean([p.per_seed_b[s] for s in shared])
        if p.result is None:
            delta, p_value, units = f"– ({p.note})", "–", "–"
        else:
            r = p.result
            delta = f"{r.delta:+.4f} [{r.low:+.4f}, {r.high:+.4f}]"
            p_value = "< 0.001" if r.p_value < 0.001 else f"{r.p_value:.3f}"
            units = f"{r.n_units // max(r.n_seeds, 1)} × {r.n_seeds}"
        lines.append(f"| {p.b} vs {p.a} | {_num(mean_a, 4)} | {_num(mean_b, 4)} | {delta} | "
                     f"{p_value} | {units} | " + " | ".join(cells) + " |")
    lines += ["", "Cost per row (means over its seeds): wall seconds of the whole run (data, "
              "training, evaluation), epochs trained (early stopping included) and seconds per "
              "epoch (training pass plus validation).", "",
              "| row | seeds | wall s | epochs | s/epoch |", "|---|---|---|---|---|"]
    for c in comparison.costs:
        lines.append(f"| {c.entry} | {c.seeds} | {_num(c.wall_seconds, 0)} | "
                     f"{_num(c.epochs, 1)} | {_num(c.seconds_per_epoch, 1)} |")
    return lines + [""]
