"""Markdown report of benchmark records: one table per (dataset, protocol), one row per
(model, source set, shots), each cell the mean ± sample standard deviation over seeds.

Every table is headed by its dataset and protocol. Published reference numbers of the suite sit
under the tables they match; when a table has an ``lm-zero-shot`` (or
``cross-encoder-zero-shot``) row, the gain of every other row over it (first metric column)
follows; for top-K tables, the sparse-user breakdown (``activity_report``); then the split each
seed ran on (the split manifest's sha256, flagged when rows of one seed differ), the peer
libraries' chosen grid points, the suite's source ablation (if any) and the PNG figures (``fusionrec.experiments.plots``).
After every table, the suite's paired comparisons and row costs (``compare``, if any).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

ZERO_SHOT = "lm-zero-shot"
#: Rows that are an untrained language model (the "before fine-tuning" baselines).
ZERO_SHOT_MODELS = (ZERO_SHOT, "cross-encoder-zero-shot")


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (``None`` for a single value)."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), (float(array.std(ddof=1)) if len(array) > 1 else None)


def _cell(values: Sequence[float]) -> str:
    if not values:
        return "–"
    mean, std = mean_std(values)
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


#: AUCs without the item-popularity signal that every CTR table shows right after ``auc``
#: when its runs hold them, whether the suite lists them or not (issue 17: a CTR AUC alone
#: cannot tell preference from popularity).
BESIDE_AUC = ("warm_item_auc", "within_item_auc")


def metric_columns(records: Iterable[Mapping[str, Any]], wanted: Sequence[str] = ()) -> list[str]:
    """``wanted`` if given (plus :data:`BESIDE_AUC` after ``auc``), else every metric the
    records hold (counts ``n_*`` left out), in order of first appearance."""
    records = list(records)
    if wanted:
        columns = list(wanted)
        if "auc" in columns:
            held = [m for m in BESIDE_AUC if m not in columns
                    and any(_finite(r["metrics"].get(m)) for r in records)]
            at = columns.index("auc") + 1
            columns[at:at] = held
        return columns
    names = dict.fromkeys(k for r in records for k, v in r["metrics"].items()
                          if _finite(v) and not k.startswith("n_") and k != "n")
    return list(names)


def _groups(records: Sequence[Mapping[str, Any]]) -> dict[tuple, dict[tuple, list]]:
    """``{(dataset, protocol): {(model, sources, shots): [successful records]}}``, in order."""
    tables: dict[tuple, dict[tuple, list]] = {}
    for record in records:
        if "error" in record:
            continue
        rows = tables.setdefault((record["dataset"], record["protocol"]), {})
        key = (record["model"], tuple(record["sources"]), record["shots"])
        rows.setdefault(key, []).append(record)
    return tables


def _values(runs: Sequence[Mapping[str, Any]], metric: str) -> list[float]:
    return [float(r["metrics"][metric]) for r in runs if _finite(r["metrics"].get(metric))]


def _model_cell(model: str, runs: Sequence[Mapping[str, Any]]) -> str:
    library = runs[0].get("library") if runs else None
    return f"{model} (peer: {library})" if library else model


def _table(rows: dict[tuple, list], metrics: Sequence[str], published: Sequence[Any]) -> list[str]:
    lines = ["| model | sources | shots | seeds | " + " | ".join(metrics) + " |",
             "|---|---|---|---|" + "---|" * len(metrics)]
    for (model, sources, shots), runs in rows.items():
        cells = [_cell(_values(runs, m)) for m in metrics]
        lines.append(f"| {_model_cell(model, runs)} | {', '.join(sources) or '–'} | "
                     f"{'–' if shots is None else shots} | {len(runs)} | " + " | ".join(cells)
                     + " |")
    for ref in published:
        cells = [f"{ref.metrics[m]:.4f}" if m in ref.metrics else "–" for m in metrics]
        lines.append(f"| *{ref.model} (published)* | – | – | – | " + " | ".join(cells) + " |")
    return lines


def _gains(rows: dict[tuple, list], metric: str) -> list[str]:
    """Each row's mean gain over the zero-shot LM row with the same shots (else the one with
    ``shots: 0``, the untrained model of a few-shot suite)."""
    zero = {key[2]: _values(runs, metric) for key, runs in rows.items()
            if key[0] in ZERO_SHOT_MODELS}
    found = []
    for (model, _sources, shots), runs in rows.items():
        base, mine = zero.get(shots, zero.get(0)), _values(runs, metric)
        if model in ZERO_SHOT_MODELS or not base or not mine:
            continue
        label = model if shots in (None, 0) else f"{model} ({shots} shots)"
        found.append(f"{label}: {np.mean(mine) - np.mean(base):+.4f}")
    return found


def split_lines(rows: dict[tuple, list]) -> list[str]:
    """Which split manifest (sha256) each seed's rows ran on; rows of one seed and shots on
    different splits are named, since their numbers are then not comparable."""
    by_seed: dict[tuple, dict[str, list[str]]] = {}
    for (model, _, shots), runs in rows.items():
        for run in runs:
            if run.get("split_sha256"):
                shas = by_seed.setdefault((run["seed"], shots), {})
                shas.setdefault(run["split_sha256"], []).append(_row_label((model, _, shots)))
    if not by_seed:
        return []
    same = [f"seed {seed}{'' if shots is None else f' ({shots}-shot)'} `{next(iter(shas))[:12]}`"
            for (seed, shots), shas in by_seed.items() if len(shas) == 1]
    lines = []
    if same:
        lines.append("Split manifests (sha256, first 12 hex digits), every row of a seed on the "
                     "same split: " + ", ".join(same) + ".")
    for (seed, _shots), shas in by_seed.items():
        if len(shas) > 1:
            lines.append(f"**Rows of seed {seed} ran on different splits:** " + "; ".join(
                f"`{sha[:12]}`: {', '.join(models)}" for sha, models in shas.items()) + ".")
    return lines + [""]


def peer_lines(rows: dict[tuple, list]) -> list[str]:
    """The grid point each peer row chose (on the valid part), per seed."""
    lines = []
    for (model, _, _), runs in rows.items():
        chosen = [r for r in runs if r.get("library")]
        if not chosen:
            continue
        version = chosen[0].get("library_version") or ""
        picks = "; ".join(f"seed {r['seed']}: " + ", ".join(
            f"{k} {v}" for k, v in (r.get("params") or {}).items()) for r in chosen)
        on = (chosen[0].get("selected_on") or {}).get("metric", "the valid part")
        lines.append(f"- {model}: {chosen[0]['library']} {version}, run on the same split and "
                     f"scored by FusionRec's metric code; grid point chosen on {on} ({picks})")
    return lines + [""] if lines else []


def _row_label(key: tuple) -> str:
    model, _, shots = key
    return model if shots is None else f"{model} ({shots}-shot)"


def figure_tables(records: Sequence[Mapping[str, Any]], run_dirs: Sequence[Any], suite
                  ) -> dict[tuple, dict[str, Any]]:
    """What :func:`fusionrec.experiments.plots.write_figures` draws, per (dataset, protocol):
    test values per row label and metric, and each row's run folders (``run_dirs[i]``
    belongs to ``records[i]``)."""
    dirs = {id(r): d for r, d in zip(records, run_dirs, strict=True)}
    tables = {}
    for key, rows in _groups(records).items():
        runs = [r for group in rows.values() for r in group]
        metrics = metric_columns(runs, suite.metrics_for(key[1]))
        tables[key] = {
            "metrics": metrics,
            "rows": {_row_label(k): {m: _values(g, m) for m in metrics} for k, g in rows.items()},
            "runs": {_row_label(k): [dirs[id(r)] for r in g] for k, g in rows.items()},
            "monitor": metrics[0] if metrics else None}
    return tables


def render_report(records: Sequence[Mapping[str, Any]], suite, ablations: Sequence[Any] = (),
                  figures: Mapping[tuple, Sequence[tuple[str, str]]] | None = None,
                  comparison: Any = None) -> str:
    """The whole ``report.md`` for a suite's records; ``ablations``
    (:class:`~fusionrec.experiments.ablation.Ablation`) and ``figures`` (``{(dataset,
    protocol): [(caption, relative png path)]}``) go under their table, ``comparison``
    (:class:`~fusionrec.experiments.compare.Comparison`) after every table."""
    from fusionrec.experiments.ablation import ablation_lines
    from fusionrec.experiments.activity_report import activity_lines
    from fusionrec.experiments.refusals import refused_rows

    failed = [r for r in records if "error" in r]
    lines = [f"# Benchmark: {suite.name}", ""]
    if suite.description:
        lines += [suite.description, ""]
    lines += [f"{len(records)} runs ({len(failed)} failed). Each cell: test-set mean ± sample "
              "standard deviation over the seeds counted in `seeds` (each seed re-draws the "
              "split and the training randomness).", ""]
    for (dataset, protocol), rows in _groups(records).items():
        runs = [r for group in rows.values() for r in group]
        metrics = metric_columns(runs, suite.metrics_for(protocol))
        published = [p for p in suite.published if p.matches(dataset, protocol)]
        lines += [f"## {dataset} — protocol `{protocol}`", ""]
        lines += _table(rows, metrics, published) \
            + refused_rows(records, dataset, protocol, len(metrics)) + [""]
        gains = _gains(rows, metrics[0]) if metrics else []
        if gains:
            zero = next(k[0] for k in rows if k[0] in ZERO_SHOT_MODELS)
            lines += [f"Gain over the untrained LM (`{zero}`, {metrics[0]}): "
                      + "; ".join(gains) + ".", ""]
        by_source: dict[str, list[str]] = {}
        for ref in published:
            by_source.setdefault(ref.source, []).append(f"*{ref.model}*")
        for source, models in by_source.items():
            lines.append(f"- {', '.join(models)} (published): {source}")
        if published:
            lines.append("")
        lines += activity_lines(rows, metrics[0]) if metrics else []
        lines += split_lines(rows) + peer_lines(rows)
        for ablation in ablations:
            if (ablation.dataset, ablation.protocol) == (dataset, protocol):
                lines += ablation_lines(ablation)
        for caption, path in (figures or {}).get((dataset, protocol), ()):
            lines += [f"![{caption}]({path})", ""]
    if comparison is not None:
        from fusionrec.experiments.compare import comparison_lines

        lines += comparison_lines(comparison)
    if failed:
        lines += ["## Failed runs", ""]
        for r in failed:
            where = ", ".join(str(x) for x in (r["dataset"], r["protocol"]) if x)
            lines.append(f"- {r['model']}{f' ({where})' if where else ''}, seed {r['seed']}: "
                         f"{r['error']}")
        lines.append("")
    return "\n".join(lines)
