"""Valid and test metrics, per seed, of every finished run in a benchmark output folder.

    python benchmarks/valid_table.py reports/lastfm-cold-items [--metric ndcg@10]
        [--json benchmarks/results/lastfm-cold-items/valid.json] [--data-dir DATA]

A suite's report.md shows test metrics only, while every choice (early stopping, a ridge
penalty, a peer's grid point) is made on the valid part; this puts both side by side so a
reader can see whether a row's rank on test is also its rank on valid. A run folder with a
saved model is re-scored on valid (``fusionrec evaluate --part valid``); a peer row reads the
valid metrics of its chosen grid point from ``peer.json``; refused runs are left out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fusionrec.evaluation.runs import evaluate_run


def run_rows(out: Path, data_dir: str | None) -> list[dict]:
    """One row per finished run: entry, seed, valid and test metrics."""
    rows = []
    for run in sorted(out.glob("runs/*/seed-*")):
        record_path = run / "record.json"
        peer = (run / "peer.json").exists()
        if not record_path.exists() or not (peer or (run / "manifest.json").exists()):
            continue  # failed or refused: nothing to score
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if peer:
            peer = json.loads((run / "peer.json").read_text(encoding="utf-8"))
            valid = peer["chosen"]["valid"]
        else:
            valid = evaluate_run(run, part="valid", data_dir=data_dir)["metrics"]
        rows.append({"entry": run.parent.name, "seed": int(run.name.split("-", 1)[1]),
                     "valid": valid, "test": record["metrics"],
                     "wall_seconds": record.get("wall_seconds")})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="a `fusionrec benchmark --out` folder")
    parser.add_argument("--metric", default="ndcg@10")
    parser.add_argument("--json", default=None, help="also write the rows as JSON here")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    rows = run_rows(Path(args.out), args.data_dir)
    metric = args.metric
    print(f"| entry | seed | valid {metric} | test {metric} | wall s |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['entry']} | {row['seed']} | {row['valid'][metric]:.4f} "
              f"| {row['test'][metric]:.4f} | {row['wall_seconds'] or 0:.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
