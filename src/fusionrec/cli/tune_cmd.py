"""``fusionrec tune -c CONFIG --trials N``: a thin wrapper over
:func:`fusionrec.training.tune.tune`."""

from __future__ import annotations

import argparse
from pathlib import Path

from fusionrec.cli.extras_hint import epilog, require_extra
from fusionrec.cli.main import UserError


def register(subparsers) -> None:
    tune = subparsers.add_parser(
        "tune", help="search hyper-parameters with Optuna on the validation split; writes the "
        "best config as YAML and a trials table", epilog=epilog("tune", "fusionrec tune"))
    tune.add_argument("-c", "--config", required=True,
                      help="run config YAML; an optional `tune:` section sets the search space "
                      "(default: one per model)")
    tune.add_argument("--trials", type=int, help="number of trials (default: tune.trials)")
    tune.add_argument("--timeout", type=float, metavar="S",
                      help="stop starting trials after S seconds")
    tune.add_argument("--out", help="output folder (default: tune-<config name>)")
    tune.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE", help="override a config value before the search, "
                      "e.g. --set trainer.epochs=10 (repeatable)")
    tune.add_argument("--seed", type=int, help="sampler seed (default: trainer.seed)")
    tune.add_argument("--data-dir", help="data root (default: $FUSIONREC_DATA, then "
                      "~/.cache/fusionrec/data)")
    tune.add_argument("--progress", action="store_true",
                      help="show per-trial training bars and Optuna's log")
    tune.set_defaults(func=_tune)


def _tune(args: argparse.Namespace) -> int:
    require_extra("tune", "fusionrec tune")
    from fusionrec.evaluation.evaluate import evaluate
    from fusionrec.training.tune import BEST_FILE, TRIALS_CSV, tune

    if args.trials is not None and args.trials < 1:
        raise UserError(f"--trials must be >= 1, got {args.trials}")
    if args.timeout is not None and args.timeout <= 0:
        raise UserError(f"--timeout must be > 0, got {args.timeout}")
    out = Path(args.out or f"tune-{Path(args.config).stem}")
    result = tune(args.config, out, evaluate=evaluate, trials=args.trials, timeout=args.timeout,
                  overrides=args.overrides, data_dir=args.data_dir, progress=args.progress,
                  seed=args.seed)
    states = [row["state"] for row in result.trials]
    print(f"{len(states)} trials ({states.count('COMPLETE')} complete, "
          f"{states.count('PRUNED')} pruned, {states.count('FAIL')} failed) in "
          f"{result.seconds:.1f}s; objective: valid {result.monitor} ({result.direction})")
    print(f"best trial {result.best_trial}: {result.monitor} {result.best_value:.4f}")
    for key, value in result.best_params.items():
        print(f"  {key} = {value}")
    print(f"best config: {out / BEST_FILE} (train it: fusionrec train -c {out / BEST_FILE} "
          f"--out RUN_DIR); trials: {out / TRIALS_CSV}")
    return 0
