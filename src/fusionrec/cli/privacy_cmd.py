"""``fusionrec forget | reidentify | pseudonym``: thin wrappers over :mod:`fusionrec.privacy`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fusionrec.cli.extras_hint import epilog, require_extra
from fusionrec.cli.main import UserError


def register(subparsers) -> None:
    forget = subparsers.add_parser(
        "forget", help="remove a user from a run folder, its event store and embedding cache",
        description="Deletes the user's rows, split entries, cached text embeddings, events and "
                    "friend links; re-derives dependent rows; rewrites the checksums. Prints "
                    "what still needs a retrain (or retrains with --retrain).")
    forget.add_argument("run_dir", metavar="RUN_DIR")
    forget.add_argument("--user", required=True, help="the user's id (raw or pseudonym)")
    forget.add_argument("--events", help="event store URL or SQLite path (default: "
                                         "RUN_DIR/events.sqlite3 when it exists)")
    forget.add_argument("--data-dir", help="data root (default: the one the run trained on)")
    forget.add_argument("--retrain", action="store_true",
                        help="retrain the model from scratch without the user")
    forget.set_defaults(func=_forget)

    reid = subparsers.add_parser(
        "reidentify", help="map a run's pseudonyms back to raw ids (needs the key)",
        description="Recomputes the keyed pseudonym of each candidate raw id and prints "
                    "`pseudonym<TAB>raw id` for those the run (or --pseudonyms) holds.")
    reid.add_argument("run_dir", metavar="RUN_DIR", nargs="?",
                      help="run folder whose users.json lists the pseudonyms")
    reid.add_argument("--pseudonyms", help="file of pseudonyms, one per line (instead of a run)")
    reid.add_argument("--candidates", help="file of raw ids, one per line")
    reid.add_argument("--from-data", action="store_true",
                      help="take the candidates from the run's own dataset (raw ids)")
    reid.add_argument("--key-file", help="pseudonym key file (default: $FUSIONREC_PSEUDONYM_KEY)")
    reid.set_defaults(func=_reidentify)

    dp = subparsers.add_parser(
        "dp-head", help="re-train a fusion run's head with DP-SGD and report epsilon",
        description="Copies RUN_DIR to --out with the fusion head (fusion layers and heads) "
                    "re-trained by DP-SGD (Opacus) over the run's frozen per-source tables; "
                    "prints epsilon for --delta and the test metrics before and after.",
        epilog=epilog("dp", "fusionrec dp-head"))
    dp.add_argument("run_dir", metavar="RUN_DIR")
    dp.add_argument("--out", required=True, help="new run folder")
    dp.add_argument("--noise", type=float, default=1.0, help="noise multiplier")
    dp.add_argument("--clip", type=float, default=1.0, help="per-example gradient norm bound")
    dp.add_argument("--delta", type=float, help="default: 1 / (10 * training examples)")
    dp.add_argument("--epochs", type=int, default=5)
    dp.add_argument("--batch-size", type=int, default=256)
    dp.add_argument("--lr", type=float, default=0.05)
    dp.add_argument("--data-dir", help="data root (default: the one the run trained on)")
    dp.set_defaults(func=_dp_head)

    pseud = subparsers.add_parser("pseudonym", help="print the pseudonyms of raw user ids")
    pseud.add_argument("ids", nargs="+", metavar="RAW_ID")
    pseud.add_argument("--key-file", help="pseudonym key file (default: $FUSIONREC_PSEUDONYM_KEY)")
    pseud.set_defaults(func=_pseudonym)


def _forget(args: argparse.Namespace) -> int:
    from fusionrec.privacy.forget import forget_user
    from fusionrec.serving.store import open_store

    events = args.events
    default = Path(args.run_dir) / "events.sqlite3"
    if events is None and default.is_file():
        events = str(default)
    store = open_store(events) if events else None
    try:
        report = forget_user(args.run_dir, args.user, store=store, data_dir=args.data_dir,
                             retrain=args.retrain, progress=False)
    finally:
        if store is not None:
            store.close()
    print(json.dumps(report.to_dict(), indent=2))
    if report.needs_retrain:
        print("still shaped by the user until retrained (fusionrec forget --retrain, or "
              "retrain the run):", file=sys.stderr)
        for line in report.needs_retrain:
            print(f"  - {line}", file=sys.stderr)
    return 0


def _keyed(key_file: str | None):
    from fusionrec.privacy.pseudonym import pseudonymiser

    return pseudonymiser(key_file)


def _lines(path: str) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise UserError(f"cannot read {path}: {error}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _reidentify(args: argparse.Namespace) -> int:
    from fusionrec.privacy.align import run_users
    from fusionrec.privacy.pseudonym import check_key
    from fusionrec.training.artifacts import verify_run

    if (args.run_dir is None) == (args.pseudonyms is None):
        raise UserError("give a RUN_DIR or --pseudonyms FILE (one of them)")
    if not args.candidates and not args.from_data:
        raise UserError("give --candidates FILE or --from-data")
    keyed = _keyed(args.key_file)
    if args.run_dir is not None:
        check_key(keyed.key_id, verify_run(args.run_dir))  # RunError when not a run folder
        pseudonyms = list(run_users(args.run_dir).ids)
    else:
        pseudonyms = _lines(args.pseudonyms)
    candidates = _lines(args.candidates) if args.candidates else []
    if args.from_data:
        if args.run_dir is None:
            raise UserError("--from-data needs a RUN_DIR")
        from dataclasses import replace

        from fusionrec.training.artifacts import read_run_config
        from fusionrec.training.run import load_data

        config = read_run_config(args.run_dir)
        raw = load_data(replace(config.data, pseudonymize=False)).dataset
        candidates += list(raw.users.ids)
    found = keyed.reidentify(pseudonyms, candidates)
    for pseudonym in pseudonyms:
        if pseudonym in found:
            print(f"{pseudonym}\t{found[pseudonym]}")
    print(f"{len(found)} of {len(set(pseudonyms))} pseudonyms re-identified", file=sys.stderr)
    return 0


def _pseudonym(args: argparse.Namespace) -> int:
    keyed = _keyed(args.key_file)
    for raw in args.ids:
        print(f"{raw}\t{keyed.pseudonym(raw)}")
    return 0


def _dp_head(args: argparse.Namespace) -> int:
    require_extra("dp", "fusionrec dp-head")
    try:
        from fusionrec.privacy.dp import DPConfig, private_run

        config = DPConfig(noise_multiplier=args.noise, max_grad_norm=args.clip,
                          delta=args.delta, epochs=args.epochs, batch_size=args.batch_size,
                          lr=args.lr)
        if Path(args.out).exists():
            raise UserError(f"{args.out} already exists; choose a new --out folder")
        report, metrics = private_run(args.run_dir, args.out, config, args.data_dir)
    except ValueError as error:  # DPConfig's own checks raise plain ValueError
        raise UserError(str(error)) from None
    print(json.dumps({"dp": report.to_dict(), "test": metrics}, indent=2))
    return 0
