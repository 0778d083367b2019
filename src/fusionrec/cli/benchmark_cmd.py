"""``fusionrec benchmark -c SUITE.yaml --out DIR``: a thin wrapper over
:func:`fusionrec.evaluation.benchmark.run_suite`."""

from __future__ import annotations

import argparse

from fusionrec.cli.main import UserError


def register(subparsers) -> None:
    bench = subparsers.add_parser(
        "benchmark", help="train and evaluate a suite of run configs over several seeds; "
        "writes results.json and report.md")
    bench.add_argument("-c", "--config", required=True, help="benchmark suite YAML")
    bench.add_argument("--out", required=True, help="output folder (results.json, report.md, "
                       "runs/)")
    bench.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE", help="override a config value in every entry, e.g. "
                       "--set trainer.epochs=3 (repeatable)")
    bench.add_argument("--seeds", help="comma-separated seeds replacing every entry's, e.g. 0,1")
    bench.add_argument("--only", help="comma-separated entries to run: run-folder names or row "
                       "labels (a label such as implicit-als picks that row in every table)")
    bench.add_argument("--resume", action="store_true",
                       help="keep finished runs in --out and run the rest; also how a second "
                       "process joins one at work on the same --out (each run is locked while "
                       "it trains, so they share the runs)")
    bench.add_argument("--data-dir", help="data root (default: $FUSIONREC_DATA, then "
                       "~/.cache/fusionrec/data)")
    bench.add_argument("--no-progress", dest="progress", action="store_false",
                       help="hide progress bars")
    bench.set_defaults(func=_benchmark)


def _csv(text: str | None, what: str, cast=str) -> list | None:
    if not text:
        return None
    try:
        return [cast(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"{what} must be a comma-separated list, got {text!r}") from None


def _benchmark(args: argparse.Namespace) -> int:
    from fusionrec.config import ConfigError
    from fusionrec.evaluation.benchmark import run_suite
    from fusionrec.evaluation.suite import load_suite

    seeds = _csv(args.seeds, "--seeds", int)
    if seeds is not None and any(s < 0 for s in seeds):
        raise UserError(f"--seeds must be ints >= 0, got {args.seeds!r}")
    suite = load_suite(args.config)
    for item in args.overrides:  # fail fast on a malformed --set, before any training
        key, sep, _ = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"override {item!r} must look like section.key=value")
    outcome = run_suite(suite, args.out, overrides=args.overrides, data_dir=args.data_dir,
                        seeds=seeds, only=_csv(args.only, "--only"), resume=args.resume,
                        progress=args.progress)
    failed = outcome.failures
    print(f"{len(outcome.records)} runs, {len(failed)} failed -> {outcome.results_path}, "
          f"{outcome.report_path}")
    for record in failed:
        print(f"  failed: {record['model']} seed {record['seed']}: {record['error']}")
    return 1 if failed else 0
