"""Source ablations of a benchmark suite: each variant against the all-sources reference.

A suite opts in with an ``ablation`` section naming its reference entry::

    ablation:
      reference: all-sources     # entry (run-folder name) holding every source
      metric: ndcg@10            # default: auc (CTR) or ndcg@<first k> (top-K)
      confidence: 0.95
      n_boot: 1000

Every other entry on the reference's dataset and protocol is a variant (typically the same
config with ``set: {model.params.sources: [...]}``). Runs are paired per seed (same seed, same
split) through the per-unit test values each run folder holds (:mod:`fusionrec.experiments.units`)
and compared with :mod:`fusionrec.experiments.paired`. A variant whose sources are the
reference's minus one is a *leave-one-out* row; any other subset is an *add* row (sources added
one at a time, ordered by how many it has).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from fusionrec.config import ConfigError
from fusionrec.experiments.paired import PairedDelta, paired_auc_delta, paired_mean_delta


@dataclass(frozen=True)
class AblationSpec:
    reference: str
    metric: str | None = None
    confidence: float = 0.95
    n_boot: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.reference or not isinstance(self.reference, str):
            raise ConfigError(f"ablation.reference must name an entry, got {self.reference!r}")
        if not 0 < self.confidence < 1:
            raise ConfigError(f"ablation.confidence must be in (0, 1), got {self.confidence!r}")
        if not isinstance(self.n_boot, int) or self.n_boot < 100:
            raise ConfigError(f"ablation.n_boot must be an int >= 100, got {self.n_boot!r}")

    @classmethod
    def from_raw(cls, raw: Any) -> "AblationSpec":
        if not isinstance(raw, Mapping) or "reference" not in raw:
            raise ConfigError(f"ablation must be a mapping with a reference entry name, got "
                              f"{raw!r}")
        known = {"reference", "metric", "confidence", "n_boot", "seed"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"ablation: unknown key(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: raw[k] for k in known if k in raw})


@dataclass(frozen=True)
class AblationRow:
    """One variant against the reference (``result`` None, ``note`` says why, if not compared)."""

    entry: str
    sources: tuple[str, ...]
    kind: str               # "add", "leave-one-out" or "reference"
    label: str              # "+item_text", "−kg", ...
    mean: float | None      # the variant's mean metric over the paired seeds
    result: PairedDelta | None
    note: str = ""

    def to_dict(self) -> dict:
        return {"entry": self.entry, "sources": list(self.sources), "kind": self.kind,
                "label": self.label, "mean": self.mean,
                "result": self.result.to_dict() if self.result else None, "note": self.note}


@dataclass(frozen=True)
class Ablation:
    dataset: str | None
    protocol: str | None
    metric: str
    reference: str
    reference_sources: tuple[str, ...]
    reference_mean: float | None
    rows: tuple[AblationRow, ...]

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "protocol": self.protocol, "metric": self.metric,
                "reference": self.reference, "reference_sources": list(self.reference_sources),
                "reference_mean": self.reference_mean, "rows": [r.to_dict() for r in self.rows]}


def _kind_and_label(sources: Sequence[str], reference: Sequence[str]) -> tuple[str, str]:
    missing = [s for s in reference if s not in sources]
    extra = [s for s in sources if s not in reference]
    if len(missing) == 1 and not extra:
        return "leave-one-out", f"−{missing[0]}"
    if not missing and not extra:
        return "same", "= reference"
    return "add", " + ".join(sources)


def default_metric(metric: str | None, task: str, units) -> str:
    """``metric`` if given, else ``auc`` (CTR) or ``ndcg@<first k>`` of ``units``."""
    if metric:
        return metric
    if task == "ctr":
        return "auc"
    ndcg = sorted((k for k in units.arrays if k.startswith("ndcg@")),
                  key=lambda k: int(k.split("@")[1]))
    return ndcg[0] if ndcg else "ndcg@10"


def _aligned(ref, var, task: str):
    """The variant's arrays re-ordered onto the reference's units; None if they differ."""
    if task == "ctr":
        same = all(np.array_equal(ref.arrays[k], var.arrays[k]) for k in ("user", "item",
                                                                          "label"))
        return var.arrays if same else None
    if not np.array_equal(np.sort(ref.arrays["user"]), np.sort(var.arrays["user"])):
        return None
    order = np.argsort(var.arrays["user"])[np.argsort(np.argsort(ref.arrays["user"]))]
    return {k: v[order] for k, v in var.arrays.items()}


def compare(spec, reference: Mapping[int, Any], variant: Mapping[int, Any],
            metric: str) -> tuple[PairedDelta | None, float | None, str]:
    """Paired delta of ``variant`` vs ``reference`` (``{seed: UnitValues}``) over shared seeds;
    ``spec`` gives ``n_boot``, ``confidence`` and ``seed`` (an ``AblationSpec`` or a
    ``CompareSpec``)."""
    seeds = sorted(set(reference) & set(variant))
    if not seeds:
        return None, None, "no seed with per-unit values for both runs"
    task = reference[seeds[0]].task
    a, b, labels, means = [], [], [], []
    for seed in seeds:
        ref = reference[seed]
        var = _aligned(ref, variant[seed], task)
        if var is None:
            return None, None, f"seed {seed}: the two runs were not evaluated on the same units"
        if task == "ctr":
            labels.append(ref.arrays["label"])
            a.append(ref.arrays["prob"])
            b.append(var["prob"])
        else:
            if metric not in ref.arrays:
                return None, None, f"no per-user {metric} (have {sorted(ref.arrays)})"
            a.append(ref.arrays[metric])
            b.append(var[metric])
            means.append(float(np.mean(var[metric])))
    kwargs = {"n_boot": spec.n_boot, "confidence": spec.confidence, "seed": spec.seed}
    if task == "ctr":
        if metric != "auc":
            return None, None, f"CTR ablations compare auc, not {metric}"
        from fusionrec.metrics import auc_score

        result = paired_auc_delta(labels, a, b, **kwargs)
        means = [auc_score(y, p) for y, p in zip(labels, b)]
        return result, float(np.mean(means)), ""
    return paired_mean_delta(a, b, **kwargs), float(np.mean(means)), ""


def run_ablation(spec: AblationSpec, records: Sequence[Mapping[str, Any]],
                 folders: Sequence[str], load_units: Callable[[str, int], Any]) -> Ablation:
    """The ablation of a suite's ``records`` (``folders[i]``: run-folder name of record ``i``);
    ``load_units(folder, seed)`` returns that run's ``UnitValues`` or None."""
    by_folder: dict[str, list[Mapping[str, Any]]] = {}
    for record, folder in zip(records, folders, strict=True):
        if "error" not in record:
            by_folder.setdefault(folder, []).append(record)
    if spec.reference not in by_folder:
        raise ConfigError(f"ablation.reference {spec.reference!r} has no successful run "
                          f"(entries: {sorted(by_folder) or 'none'})")
    ref_records = by_folder[spec.reference]
    where = (ref_records[0]["dataset"], ref_records[0]["protocol"])
    ref_sources = tuple(ref_records[0]["sources"])

    def units_of(folder: str) -> dict[int, Any]:
        found = {r["seed"]: load_units(folder, r["seed"]) for r in by_folder[folder]}
        return {seed: u for seed, u in found.items() if u is not None}

    reference = units_of(spec.reference)
    if not reference:
        raise ConfigError(f"ablation: the reference {spec.reference!r} has no per-unit values")
    first = next(iter(reference.values()))
    metric = default_metric(spec.metric, first.task, first)
    rows = []
    for folder, group in by_folder.items():
        if folder == spec.reference or (group[0]["dataset"], group[0]["protocol"]) != where:
            continue
        sources = tuple(group[0]["sources"])
        kind, label = _kind_and_label(sources, ref_sources)
        result, mean, note = compare(spec, reference, units_of(folder), metric)
        rows.append(AblationRow(folder, sources, kind, label, mean, result, note))
    order = {"add": 0, "same": 1, "leave-one-out": 2}
    rows.sort(key=lambda r: (order.get(r.kind, 3), len(r.sources) if r.kind == "add" else 0))
    rows = _step_labels(rows)
    ref_mean = _reference_mean(reference, metric)
    return Ablation(where[0], where[1], metric, spec.reference, ref_sources, ref_mean,
                    tuple(rows))


def _step_labels(rows: list[AblationRow]) -> list[AblationRow]:
    """Add rows labelled by what they add to the previous add row (``+item_text``)."""
    from dataclasses import replace

    out, previous = [], None
    for row in rows:
        if row.kind == "add":
            if previous is None:
                label = "only " + ", ".join(row.sources)
            else:
                new = [s for s in row.sources if s not in previous]
                gone = [s for s in previous if s not in row.sources]
                label = " ".join([*(f"+{s}" for s in new), *(f"−{s}" for s in gone)]) or "="
            row, previous = replace(row, label=label), row.sources
        out.append(row)
    return out


def _reference_mean(reference: Mapping[int, Any], metric: str) -> float | None:
    from fusionrec.metrics import auc_score

    values = []
    for units in reference.values():
        if units.task == "ctr":
            values.append(auc_score(units.arrays["label"], units.arrays["prob"]))
        elif metric in units.arrays:
            values.append(float(np.mean(units.arrays[metric])))
    return float(np.mean(values)) if values else None


def ablation_lines(ablation: Ablation) -> list[str]:
    """The report's markdown section for one ablation."""
    pct = round(100 * (ablation.rows[0].result.confidence if ablation.rows
                       and ablation.rows[0].result else 0.95))
    ref_mean = "–" if ablation.reference_mean is None else f"{ablation.reference_mean:.4f}"
    lines = [f"### Source ablation — {ablation.dataset}, `{ablation.protocol}`, "
             f"{ablation.metric}", "",
             f"Reference `{ablation.reference}` ({', '.join(ablation.reference_sources)}): "
             f"{ablation.metric} {ref_mean}. Δ = variant − reference, mean over paired seeds; "
             f"{pct}% CI by paired bootstrap over "
             + ("test rows (DeLong p-value)." if ablation.metric == "auc"
                else "users (randomisation-test p-value)."), "",
             f"| variant | kind | sources | {ablation.metric} | Δ vs all | {pct}% CI | p | "
             "units × seeds |", "|---|---|---|---|---|---|---|---|"]
    for row in ablation.rows:
        mean = "–" if row.mean is None else f"{row.mean:.4f}"
        if row.result is None:
            lines.append(f"| {row.entry} | {row.kind} | {', '.join(row.sources)} | {mean} | "
                         f"– | {row.note} | – | – |")
            continue
        r = row.result
        lines.append(f"| {row.entry} | {row.kind} ({row.label}) | {', '.join(row.sources)} | "
                     f"{mean} | {r.delta:+.4f} | [{r.low:+.4f}, {r.high:+.4f}] | "
                     f"{_p(r.p_value)} | {r.n_units // max(r.n_seeds, 1)} × {r.n_seeds} |")
    return lines + [""]


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def load_units_from(out_dir: str | Path, runs_dir: str = "runs") -> Callable[[str, int], Any]:
    """``load_units(folder, seed)`` over a benchmark output folder."""
    from fusionrec.experiments.units import UNITS_FILE, UnitValues

    def load(folder: str, seed: int):
        run = Path(out_dir) / runs_dir / folder / f"seed-{seed}"
        return UnitValues.load(run) if (run / UNITS_FILE).is_file() else None

    return load
