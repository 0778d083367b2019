"""The sparse-user table of a benchmark report: one row per model, one column per bucket of
training interactions (``fusionrec.evaluation.activity``), each cell mean ± std over seeds."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from fusionrec.evaluation.activity import BUCKETS


def _cell(values: Sequence[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"


def activity_lines(rows: Mapping[tuple, Sequence[Mapping[str, Any]]], metric: str) -> list[str]:
    """Markdown lines for ``rows`` (``{(model, sources, shots): [records]}``) whose records
    carry ``by_activity``; empty when none does or ``metric`` is in no bucket. Buckets with no
    user in any run are left out; the header gives the users per bucket (mean over runs)."""
    runs = [r for group in rows.values() for r in group if r.get("by_activity")]
    labels = [label for label, _, _ in BUCKETS
              if any(r["by_activity"].get(label, {}).get("n_users") for r in runs)]
    if not labels or not any(metric in r["by_activity"][lab]["metrics"]
                             for r in runs for lab in labels):
        return []
    users = {lab: np.mean([r["by_activity"][lab]["n_users"] for r in runs if lab in
                           r["by_activity"]]) for lab in labels}
    lines = [f"Sparse users: `{metric}` by the user's number of training interactions "
             "(users per bucket, mean over runs, in brackets).", "",
             "| model | sources | shots | " + " | ".join(f"{lab} ({users[lab]:.0f})"
                                                     for lab in labels) + " |",
             "|---|---|---|" + "---|" * len(labels)]
    for (model, sources, shots), group in rows.items():
        mine = [r["by_activity"] for r in group if r.get("by_activity")]
        if not mine:
            continue
        cells = [_cell([float(b[lab]["metrics"][metric]) for b in mine
                        if metric in b.get(lab, {}).get("metrics", {})]) for lab in labels]
        lines.append(f"| {model} | {', '.join(sources) or '–'} | "
                     f"{'–' if shots is None else shots} | " + " | ".join(cells) + " |")
    return lines + [""]
