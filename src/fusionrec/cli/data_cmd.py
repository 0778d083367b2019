"""``fusionrec data validate|download|generate``: thin wrappers over :mod:`fusionrec.data`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fusionrec.cli.main import UserError


def register(subparsers) -> None:
    data = subparsers.add_parser("data", help="validate, download or generate datasets")
    commands = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    data.set_defaults(func=lambda args: data.print_help() or 0)

    check = commands.add_parser(
        "validate", help="load a preset or spec file and report rows read/kept/dropped",
        description="Exit 0 when the data is usable, 1 (with one-line errors) otherwise.")
    check.add_argument("spec", metavar="SPEC_OR_PRESET",
                       help="preset name (lastfm, lastfm-kg, ml-100k, amazon-instruments, "
                            "synthetic) or a spec.yaml path")
    check.add_argument("--data-dir", help="data root (default: $FUSIONREC_DATA or "
                                          "~/.cache/fusionrec/data)")
    check.add_argument("--json", metavar="OUT", help="also write the report as JSON to OUT")
    check.set_defaults(func=_validate)

    fetch = commands.add_parser("download", help="download a public dataset into the data root")
    fetch.add_argument("name", metavar="NAME",
                       help="ml-100k, lastfm, lastfm-kg or amazon-instruments")
    fetch.add_argument("--data-dir", help="data root to download into")
    fetch.set_defaults(func=_download)

    gen = commands.add_parser("generate", help="write the synthetic dataset as CSV + spec.yaml")
    gen.add_argument("--out", default="synthetic-data", help="output folder (default: %(default)s)")
    gen.add_argument("--users", type=int, help="number of users")
    gen.add_argument("--items", type=int, help="number of items")
    gen.add_argument("--interactions", type=int, help="number of interactions")
    gen.add_argument("--seed", type=int, help="random seed")
    gen.set_defaults(func=_generate)


def _validate(args: argparse.Namespace) -> int:
    from fusionrec.data.load import validate_dataset

    _, report = validate_dataset(args.spec, args.data_dir)
    print(report.summary())
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
        print(f"report written to {out}")
    return 0 if report.usable else 1


def _download(args: argparse.Namespace) -> int:
    from fusionrec.data.download import REMOTE, download
    from fusionrec.data.paths import resolve_data_dir

    if args.name not in REMOTE:
        raise UserError(f"no download for {args.name!r}; known: {', '.join(REMOTE)}")
    remote = REMOTE[args.name]
    print(f"{args.name}: from {remote.origin}")
    print(f"into {resolve_data_dir(args.data_dir) / remote.folder}")
    files = download(args.name, args.data_dir)
    for path in files:
        print(f"  verified {path}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from fusionrec.data.export import write_dataset
    from fusionrec.data.load import dataset_counts
    from fusionrec.data.synthetic import generate

    options = {key: value for key, value in (("n_users", args.users), ("n_items", args.items),
                                             ("n_interactions", args.interactions),
                                             ("seed", args.seed)) if value is not None}
    try:
        dataset = generate(**options)
    except ValueError as error:
        raise UserError(str(error)) from None
    spec = write_dataset(dataset, args.out)
    counts = ", ".join(f"{k} {v:,}" for k, v in dataset_counts(dataset).items())
    print(f"wrote {len(list(spec.parent.glob('*.csv')))} CSV files and {spec}")
    print(f"  {counts}")
    print(f"load it with: fusionrec data validate {spec}")
    return 0
