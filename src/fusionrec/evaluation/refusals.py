"""Report rows for runs whose model refused a cold-start split.

A model that cannot score a cold entity raises
:class:`~fusionrec.data.split.ColdStartUnsupported` (``fusionrec.evaluation.cold``); the
benchmark records that as the run's ``error``. Such a run is a result, not a crash: the model
has no number on this protocol. So the report keeps its row in the table, with the refusal in
place of the metrics, instead of dropping the row (a reader would otherwise not know the model
was tried). The full message stays under "Failed runs".
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

REFUSAL_ERROR = "ColdStartUnsupported"


def refusal(record: Mapping[str, Any]) -> str | None:
    """``"cannot score cold items"`` (or users) for a refused run's record, else None."""
    error = record.get("error")
    if not isinstance(error, str) or not error.startswith(f"{REFUSAL_ERROR}:"):
        return None
    for kind in ("items", "users"):
        if f"cannot score cold {kind}" in error:
            return f"cannot score cold {kind}"
    return "cannot score cold entities"


def refused_rows(records: Sequence[Mapping[str, Any]], dataset: str | None,
                 protocol: str | None, n_metrics: int) -> list[str]:
    """Table rows (same columns as the report's tables) for the refused runs of one
    (dataset, protocol): the refusal in the first metric column, ``–`` in the others."""
    rows: dict[tuple, list[str]] = {}
    for record in records:
        reason = refusal(record)
        if reason is None or (record.get("dataset"), record.get("protocol")) != (dataset,
                                                                                 protocol):
            continue
        key = (record["model"], tuple(record.get("sources") or ()), record.get("shots"),
               reason)
        rows.setdefault(key, []).append(record)
    lines = []
    for (model, sources, shots, reason), runs in rows.items():
        cells = [f"refused: {reason}"] + ["–"] * max(n_metrics - 1, 0)
        library = runs[0].get("library")
        label = f"{model} (peer: {library})" if library else model
        lines.append(f"| {label} | {', '.join(sources) or '–'} | "
                     f"{'–' if shots is None else shots} | {len(runs)} | "
                     + " | ".join(cells) + " |")
    return lines
