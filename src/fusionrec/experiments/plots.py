"""PNG figures of a benchmark report: metric bars with error bars, ablation deltas with their
confidence intervals, and validation learning curves from the run folders' ``metrics.jsonl``.

Figures are drawn on ``matplotlib.figure.Figure`` objects (the Agg canvas, no pyplot): no
global backend or figure state, so plotting is safe in tests and worker processes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

PLOTS_DIR = "plots"


def _slug(*parts: Any) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", "_".join(str(p) for p in parts)).strip("-")


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def metric_bars(rows: Mapping[str, Mapping[str, Sequence[float]]], metrics: Sequence[str],
                title: str, path: Path) -> Path:
    """Grouped bars: one group per metric, one bar per row label (mean, error bar: sample std
    over seeds; none for a single seed)."""
    from matplotlib.figure import Figure

    labels = list(rows)
    fig = Figure(figsize=(max(6.0, 1.2 * len(metrics) * max(len(labels), 1) / 2 + 3), 4))
    ax = fig.subplots()
    width = 0.8 / max(len(labels), 1)
    for i, label in enumerate(labels):
        means, errors = [], []
        for metric in metrics:
            values = np.asarray(rows[label].get(metric, ()), dtype=np.float64)
            means.append(values.mean() if values.size else np.nan)
            errors.append(values.std(ddof=1) if values.size > 1 else 0.0)
        x = np.arange(len(metrics)) + (i - (len(labels) - 1) / 2) * width
        ax.bar(x, means, width, yerr=errors, capsize=3, label=label)
    ax.set_xticks(np.arange(len(metrics)), metrics)
    ax.set(title=title, ylabel="test value (mean ± std over seeds)")
    ax.legend(fontsize="small", ncols=2 if len(labels) > 6 else 1)
    return _save(fig, path)


def ablation_deltas(ablation, path: Path) -> Path:
    """Horizontal bars of each variant's delta vs the reference, with CI whiskers."""
    from matplotlib.figure import Figure

    rows = [r for r in ablation.rows if r.result is not None]
    fig = Figure(figsize=(7, 1.2 + 0.45 * max(len(rows), 1)))
    ax = fig.subplots()
    y = np.arange(len(rows))[::-1]
    deltas = np.array([r.result.delta for r in rows])
    low = deltas - np.array([r.result.low for r in rows])
    high = np.array([r.result.high for r in rows]) - deltas
    colours = ["tab:red" if r.result.high < 0 else "tab:green" if r.result.low > 0
               else "tab:gray" for r in rows]
    ax.barh(y, deltas, xerr=np.vstack([low, high]) if rows else None, capsize=3,
            color=colours)
    ax.set_yticks(y, [f"{r.entry} ({r.label})" for r in rows])
    ax.axvline(0.0, color="black", linewidth=0.8)
    pct = round(100 * rows[0].result.confidence) if rows else 95
    ax.set(xlabel=f"Δ {ablation.metric} vs {ablation.reference} ({pct}% CI)",
           title=f"source ablation: {ablation.dataset}, {ablation.protocol}")
    return _save(fig, path)


def read_history(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def learning_curves(runs: Mapping[str, Sequence[Path]], monitor: str | None, title: str,
                    path: Path) -> Path | None:
    """Validation ``monitor`` per epoch, one colour per entry and one line per seed; None when
    no run logged epochs (e.g. only untrained baselines)."""
    from matplotlib.figure import Figure

    histories = {label: [read_history(r) for r in dirs] for label, dirs in runs.items()}
    histories = {k: [h for h in v if h] for k, v in histories.items()}
    histories = {k: v for k, v in histories.items() if v}
    if not histories:
        return None
    if monitor is None or not any(monitor in rec.get("valid", {}) for v in histories.values()
                                  for h in v for rec in h):
        monitor = next((k for v in histories.values() for h in v for rec in h
                        for k in rec.get("valid", {}) if not k.startswith("n")), None)
    fig = Figure(figsize=(9, 3.5))
    left, right = fig.subplots(1, 2)
    colours = [f"C{i % 10}" for i in range(len(histories))]
    for colour, (label, seeds) in zip(colours, histories.items()):
        for i, history in enumerate(seeds):
            epochs = [rec["epoch"] for rec in history]
            left.plot(epochs, [rec["train_loss"] for rec in history], color=colour,
                      alpha=0.8, label=label if i == 0 else None)
            if monitor:
                values = [rec.get("valid", {}).get(monitor, np.nan) for rec in history]
                right.plot(epochs, values, color=colour, alpha=0.8,
                           label=label if i == 0 else None)
    left.set(xlabel="epoch", ylabel="training loss", title=f"{title}: training loss")
    right.set(xlabel="epoch", ylabel=f"valid {monitor}", title=f"validation {monitor}")
    right.legend(fontsize="small")
    return _save(fig, path)


def write_figures(out_dir: str | Path, tables: Mapping[tuple, Mapping[str, Any]],
                  ablations: Sequence[Any] = ()) -> dict[tuple, list[tuple[str, str]]]:
    """Every figure of a report into ``out_dir/plots``.

    ``tables``: ``{(dataset, protocol): {"rows": {label: {metric: [values]}}, "metrics":
    [...], "runs": {label: [run dirs]}, "monitor": name or None}}``. Returns ``{(dataset,
    protocol): [(caption, path relative to out_dir)]}`` for the report to link.
    """
    out = Path(out_dir)
    found: dict[tuple, list[tuple[str, str]]] = {}
    for key, table in tables.items():
        dataset, protocol = key
        metrics = list(table["metrics"])[:4]
        items = found.setdefault(key, [])
        if table["rows"] and metrics:
            path = metric_bars(table["rows"], metrics, f"{dataset} — {protocol}",
                               out / PLOTS_DIR / f"metrics_{_slug(dataset, protocol)}.png")
            items.append(("test metrics (mean ± std over seeds)", str(path.relative_to(out))))
        curve = learning_curves(table.get("runs", {}), table.get("monitor"),
                                f"{dataset}", out / PLOTS_DIR /
                                f"curves_{_slug(dataset, protocol)}.png")
        if curve is not None:
            items.append(("learning curves (validation)", str(curve.relative_to(out))))
    for ablation in ablations:
        if not any(r.result is not None for r in ablation.rows):
            continue
        path = ablation_deltas(ablation, out / PLOTS_DIR /
                               f"ablation_{_slug(ablation.dataset, ablation.protocol)}.png")
        found.setdefault((ablation.dataset, ablation.protocol), []).append(
            ("source ablation (Δ vs all sources, CI)", str(path.relative_to(out))))
    return found
