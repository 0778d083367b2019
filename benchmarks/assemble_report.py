"""Assemble the combined report (benchmarks/report.yaml) from results its suites already hold.

Running ``fusionrec benchmark -c benchmarks/report.yaml`` retrains everything (hours). When each
table's own suite has been run (its ``results.json`` under ``benchmarks/results/``), this files
those records under the combined suite's run folders and lets the benchmark runner, with
``--resume``, keep them and render one report: the same runs, nothing retrained (a failed record,
such as a model refusing cold items, is tried again, as ``--resume`` always does: it refuses
again in seconds). A row with no
record anywhere is left out (``--only`` keeps the runner from training it) and named.

    python benchmarks/assemble_report.py --out runs/report-assembled --data-dir ../shared/data \
        benchmarks/results/report/results.json benchmarks/results/ml100k-cold-items/results.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fusionrec.experiments.benchmark import RECORD_FILE, RUNS_DIR, entry_table, run_suite
from fusionrec.experiments.suite import load_suite


def row_key(record: dict) -> tuple:
    return record["dataset"], record["protocol"], record["model"], record.get("shots")


def entry_keys(suite) -> dict[tuple, str]:
    """``(dataset, protocol, label, shots) -> run folder`` of every entry of ``suite``."""
    keys = {}
    for entry in suite.entries:
        key = (*entry_table(entry), entry.label, entry.shots)
        if key in keys:
            raise SystemExit(f"two entries share the row {key}: {keys[key]}, {entry.folder}")
        keys[key] = entry.folder
    return keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="results.json files to take rows from")
    parser.add_argument("--suite", type=Path, default=Path("benchmarks/report.yaml"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data-dir", help="data root: failed or refused records are tried "
                        "again by the runner (a refusal is quick and says so again)")
    args = parser.parse_args(argv)
    suite = load_suite(args.suite)
    folders = entry_keys(suite)
    filed: dict[str, set[int]] = {}
    for path in args.results:
        for record in json.loads(path.read_text()):
            folder = folders.get(row_key(record))
            if folder is None or record["seed"] in filed.get(folder, set()):
                continue  # not a row of this suite, or already filed from an earlier file
            run_dir = args.out / RUNS_DIR / folder / f"seed-{record['seed']}"
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / RECORD_FILE).write_text(json.dumps(record, indent=1))
            filed.setdefault(folder, set()).add(record["seed"])
    missing = [e.folder for e in suite.entries if e.folder not in filed]
    if missing:
        print(f"no record for {len(missing)} row(s), left out: {', '.join(missing)}",
              file=sys.stderr)
    short = [f"{e.folder} seeds {sorted(set(e.seeds) - filed[e.folder])}"
             for e in suite.entries if e.folder in filed and set(e.seeds) - filed[e.folder]]
    if short:
        raise SystemExit("these rows lack seeds (the runner would train them): "
                         + "; ".join(short))
    outcome = run_suite(suite, args.out, only=sorted(filed), resume=True, progress=False,
                        data_dir=args.data_dir)
    print(f"{len(outcome.records)} records -> {outcome.report_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
