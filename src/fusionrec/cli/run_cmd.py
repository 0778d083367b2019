"""``fusionrec train | evaluate | recommend | quickstart``: thin wrappers over
:mod:`fusionrec.training.run`."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from fusionrec.cli.main import UserError
from fusionrec.errors import FusionRecError


def register(subparsers) -> None:
    train = subparsers.add_parser("train", help="train a model from a run config into a run folder")
    train.add_argument("-c", "--config", help="run config YAML (optional with --resume)")
    train.add_argument("--out", required=True, help="run folder to create (or resume)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set trainer.epochs=3 (repeatable)")
    train.add_argument("--resume", action="store_true",
                       help="continue an interrupted run from its last checkpoint")
    _data_dir(train)
    _progress(train)
    train.set_defaults(func=_train)

    evaluate = subparsers.add_parser("evaluate", help="score a trained run folder")
    evaluate.add_argument("run_dir", help="run folder written by `fusionrec train`")
    evaluate.add_argument("--protocol", help="re-split with another protocol (default: the run's)")
    evaluate.add_argument("--part", default="test", choices=("train", "valid", "test"))
    evaluate.add_argument("--json", dest="json_out", help="also write the result to this file")
    evaluate.add_argument("--zero-shot", action="store_true",
                          help="also score the untrained LM (lm-zero-shot) on the same split "
                          "and show the gain training brings")
    _data_dir(evaluate)
    _progress(evaluate)
    evaluate.set_defaults(func=_evaluate)

    recommend = subparsers.add_parser("recommend", help="top-K items for one user of a run")
    recommend.add_argument("run_dir", help="run folder written by `fusionrec train`")
    recommend.add_argument("--user", required=True, help="raw user id")
    recommend.add_argument("-k", type=int, default=10, help="number of items (default 10)")
    _data_dir(recommend)
    recommend.set_defaults(func=_recommend)

    quick = subparsers.add_parser("quickstart", help="train and evaluate the default model on the "
                                  "embedded synthetic dataset, then print its metrics")
    quick.add_argument("--out", help="run folder (default: a new temporary folder)")
    _progress(quick)
    quick.set_defaults(func=_quickstart)


def _data_dir(parser) -> None:
    parser.add_argument("--data-dir", help="data root (default: $FUSIONREC_DATA, then "
                        "~/.cache/fusionrec/data)")


def _progress(parser) -> None:
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="hide progress bars")


def metrics_table(columns: dict[str, dict]) -> str:
    """Metric names down, one column per entry of ``columns`` (e.g. valid / test)."""
    def shown(value) -> bool:
        return value is not None and not (isinstance(value, float) and math.isnan(value))

    names = [n for n in dict.fromkeys(k for values in columns.values() for k in values)
             if not n.startswith("n_") and n != "n"
             and any(shown(values.get(n)) for values in columns.values())]
    width = max([len(n) for n in names] + [6])
    lines = [f"{'metric':<{width}}  " + "  ".join(f"{c:>8}" for c in columns)]
    for name in names:
        cells = [columns[c].get(name) for c in columns]
        lines.append(f"{name:<{width}}  " + "  ".join(
            f"{v:>8.4f}" if shown(v) else f"{'-':>8}" for v in cells))
    return "\n".join(lines)


def _train(args: argparse.Namespace) -> int:
    from fusionrec.training.distributed import launch
    from fusionrec.evaluation.runs import train_run
    from fusionrec.training.run import resolve_train_config

    out = Path(args.out)
    # read (no writes) before the process group exists: its backend follows trainer.device
    config = resolve_train_config(args.config, out, args.overrides, args.resume)
    with launch(config.trainer.device) as strategy:  # DDP when torchrun started several
        strategy.barrier()  # every rank checks --out before rank 0 writes into it
        result = train_run(config, out, resume=args.resume, data_dir=args.data_dir,
                           progress=args.progress, strategy=strategy)
    if not strategy.is_main:
        return 0
    epochs = (f"{result.epochs_run} epochs (best {result.best_epoch}), " if result.epochs_run
              else "")
    print(f"trained {config.model.name} on {config.data.spec or config.data.preset} "
          f"({config.protocol.name}): {epochs}{result.seconds:.1f}s -> {result.run_dir}")
    print(metrics_table(result.metrics))
    selection = result.fit.get("source_selection")
    if selection:  # sources: auto says what it chose and what choosing cost
        print(f"sources auto chose {selection['chosen']} on valid {selection['monitor']} "
              f"after {selection['trainings']} trainings ({selection['seconds']:.1f}s before "
              "the final one): " + "; ".join(
                  f"{'+'.join(c['sources'])} {c['valid']:.4f}" for c in selection["candidates"]))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from fusionrec.evaluation.runs import evaluate_run

    if args.zero_shot:
        return _evaluate_zero_shot(args)
    result = evaluate_run(args.run_dir, part=args.part, protocol=args.protocol,
                          data_dir=args.data_dir)
    print(f"{result['protocol']} / {result['part']} ({result['wall_seconds']:.1f}s)")
    print(metrics_table({result["part"]: result["metrics"]}))
    if args.json_out:
        payload = {k: result[k] for k in ("protocol", "part", "metrics", "wall_seconds")}
        Path(args.json_out).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


def _evaluate_zero_shot(args: argparse.Namespace) -> int:
    from fusionrec.evaluation.zero_shot import zero_shot_run

    if args.protocol:
        raise UserError("--zero-shot compares on the run's own split; drop --protocol")
    result = zero_shot_run(args.run_dir, part=args.part, data_dir=args.data_dir,
                           progress=args.progress)
    print(f"{result['protocol']} / {result['part']}: trained run vs untrained LM "
          f"({result['encoder']}), {result['wall_seconds']:.1f}s")
    print(metrics_table({"trained": result["metrics"], "zero-shot": result["zero_shot"],
                         "gain": result["gain"]}))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


def _recommend(args: argparse.Namespace) -> int:
    import numpy as np

    from fusionrec.training import artifacts
    from fusionrec.training.run import run_data_dir

    if args.k < 1:
        raise UserError(f"-k must be >= 1, got {args.k}")
    config, manifest, model = artifacts.open_run(args.run_dir)
    users, items = artifacts.load_vocabularies(args.run_dir)
    if args.user not in users:
        raise UserError(f"unknown user {args.user!r} in {args.run_dir}/users.json "
                        f"(e.g. {', '.join(users.ids[:3])})")
    ranked, scores = model.recommend(np.array([users.index(args.user)]), k=args.k)
    if manifest.get("protocol", {}).get("task") == "links":  # a link run ranks people
        for rank, (other, score) in enumerate(zip(ranked[0], scores[0]), start=1):
            print(f"{rank:>3}. user {users.ids[int(other)]}  ({score:.4f})")
        return 0
    names = _item_names(config, run_data_dir(config, manifest, args.data_dir))
    for rank, (item, score) in enumerate(zip(ranked[0], scores[0]), start=1):
        raw = items.ids[int(item)]
        label = f"  {names[int(item)]}" if names and names[int(item)] else ""
        print(f"{rank:>3}. {raw}{label}  ({score:.4f})")
    return 0


def _item_names(config, data_dir) -> list[str] | None:
    """Item titles/names from the run's dataset, or ``None`` if it has none or cannot load."""
    from fusionrec.training.run import load_data

    try:
        dataset = load_data(config.data, data_dir).dataset
    except (FusionRecError, OSError) as error:  # names are a nicety; the ids still print
        print(f"note: item names unavailable ({error})", file=sys.stderr)
        return None
    fields = dataset.item_text.fields if dataset.item_text is not None else {}
    for field in ("title", "name"):
        if field in fields:
            return list(fields[field])
    return None


def _quickstart(args: argparse.Namespace) -> int:
    import tempfile

    from fusionrec.config import quickstart_config
    from fusionrec.evaluation.runs import evaluate_run
    from fusionrec.evaluation.runs import train_run

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="fusionrec-quickstart-"))
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} already holds files; choose a new --out folder")
    config = quickstart_config()
    print(f"quickstart: training {config.model.name} on the synthetic dataset "
          f"({config.protocol.name}) into {out}")
    trained = train_run(config, out, progress=args.progress)
    result = evaluate_run(out)
    print(f"{trained.epochs_run} epochs (best {trained.best_epoch}) in {trained.seconds:.1f}s; "
          f"evaluated in {result['wall_seconds']:.1f}s")
    print(metrics_table({"valid": trained.metrics["valid"], "test": result["metrics"]}))
    print(f"run folder: {out}  (try: fusionrec recommend {out} --user u0 -k 5)")
    return 0
