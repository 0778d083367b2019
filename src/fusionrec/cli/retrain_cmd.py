"""``fusionrec retrain RUN_DIR --events DB --out NEW_RUN_DIR``: continual learning.

Warm-starts the run's servable model (fusion, LightGCN, BPR-MF) on the events the service
recorded (plus a replay sample of the old training data), reports metrics on new and old
held-out data, and applies the promotion gate. Exit 0: written and promoted (and, with ``--promote``, swapped into the
service); exit 3: written but refused by the gate (``retrain.json`` says ``"promoted":
false``); exit 2: nothing to do or a user error (the CLI's code for every user error).
"""

from __future__ import annotations

import argparse
import os
import sys

from fusionrec.cli.main import UserError

GATE_REFUSED = 3  # not 2: that is every command's user-error code


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "retrain", help="warm-start a served run on recorded events (forgetting check + gate)",
        description="Retrain RUN_DIR on the events in DB into NEW_RUN_DIR; see retrain.json.")
    p.add_argument("run_dir", help="the run folder being served (fusion, lightgcn or bpr-mf)")
    p.add_argument("--events", required=True,
                   help="event store: a SQLite path, sqlite:///PATH or postgresql://...")
    p.add_argument("--out", required=True, help="new run folder to create")
    p.add_argument("--epochs", type=int, default=3, help="training epochs (default 3)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: 0.3 x the run's)")
    p.add_argument("--replay", type=float, default=0.5,
                   help="fraction of the old training rows replayed (default 0.5)")
    p.add_argument("--holdout", type=float, default=0.2,
                   help="fraction of new pairs held out for the forgetting check (default 0.2)")
    p.add_argument("--valid", type=float, default=0.1,
                   help="fraction of new pairs for validation (default 0.1)")
    p.add_argument("--tolerance", type=float, default=0.01,
                   help="largest accepted drop of the monitored metric on old test data "
                   "(absolute, default 0.01)")
    p.add_argument("--after-id", type=int, default=None,
                   help="use events after this id (default: after the run's own retrain)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="data root of the run's dataset")
    p.add_argument("--promote", metavar="URL", default=None,
                   help="service base URL; when the gate passes, POST URL/v1/admin/reload")
    p.add_argument("--api-key", default=None,
                   help="the service's key (default $FUSIONREC_API_KEY; the flag shows in ps)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=_retrain)


def _retrain(args: argparse.Namespace) -> int:
    from fusionrec.continual.promotion import PromotionError, request_reload
    from fusionrec.continual.retrain import RetrainConfig, retrain, write_report
    from fusionrec.evaluation.evaluate import evaluate

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        config = RetrainConfig(epochs=args.epochs, lr=args.lr, replay=args.replay,
                               valid=args.valid, holdout=args.holdout, tolerance=args.tolerance,
                               seed=args.seed, after_id=args.after_id)
        result = retrain(args.run_dir, args.events, args.out, config, evaluate=evaluate,
                         data_dir=args.data_dir, progress=args.progress)
    except (ValueError, FileNotFoundError) as error:  # RetrainConfig's checks, a missing file
        raise UserError(str(error)) from None
    print(format_report(result.report))
    if not result.gate.passed:
        print(f"error: promotion gate {result.gate.message}; {args.out} is marked not "
              "promoted (retrain.json)", file=sys.stderr)
        return GATE_REFUSED
    if args.promote:
        key = args.api_key or os.environ.get("FUSIONREC_API_KEY")
        try:
            answer = request_reload(args.promote, key, args.out)
        except PromotionError as error:  # adds what already happened to the message
            raise UserError(f"the gate passed but the reload failed: {error}") from None
        result.report["reload"] = answer
        write_report(args.out, result.report)
        print(f"reloaded: {args.promote} now serves {answer['response'].get('run_dir')}")
    return 0


def format_report(report: dict) -> str:
    """A before/after table of the monitored metric and its neighbours, plus the verdict."""
    metric = report["monitor"]
    rows = [("old test", report["old_metrics_before"], report["old_metrics_after"]),
            ("new test (known ids)", report["new_metrics_before"], report["new_metrics_after"]),
            ("new test (all)", {}, report["new_metrics_after_all"])]
    names = [metric] + [m for m in ("recall@10", "hr@10", "auc", "logloss")
                        if m != metric and m in report["old_metrics_after"]]
    fmt = lambda d, m: f"{d[m]:.4f}" if m in d else "-"  # noqa: E731
    lines = [f"{'':22}" + "".join(f"{m + ' before':>18}{m + ' after':>18}" for m in names)]
    for label, before, after in rows:
        lines.append(f"{label:22}" + "".join(f"{fmt(before, m):>18}{fmt(after, m):>18}"
                                             for m in names))
    events = report["events"]
    lines.append(f"events {events['after_id']}..{events['upto_id']}: {report['events_used']} "
                 f"new pairs used ({events['new_users']} new users, {events['new_items']} new "
                 f"items), replay {report['replay_size']} rows, "
                 f"{report['wall_seconds']:.1f} s")
    lines.append(f"gate {report['gate']['message']}")
    return "\n".join(lines)
