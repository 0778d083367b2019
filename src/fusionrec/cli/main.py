"""The ``fusionrec`` command: a thin dispatcher over one module per command group.

Each module in ``COMMAND_MODULES`` exposes ``register(subparsers)``, which adds its sub-command(s)
and sets ``func`` (taking the parsed ``argparse.Namespace`` and returning an exit code). Modules
are imported lazily per invocation so ``fusionrec --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES: tuple[str, ...] = (
    "fusionrec.cli.data_cmd",
    "fusionrec.cli.text_cmd",
    "fusionrec.cli.encode_cmd",
    "fusionrec.cli.run_cmd",
    "fusionrec.cli.benchmark_cmd",
    "fusionrec.cli.tune_cmd",
    "fusionrec.cli.serve_cmd",
    "fusionrec.cli.privacy_cmd",
    "fusionrec.cli.retrain_cmd",
)


class UserError(Exception):
    """A problem the user can fix (bad input, missing file): printed as one line, exit 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fusionrec",
        description="Fuse many data sources through a pretrained language model into a recommender.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from fusionrec import __version__

        print(__version__)
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
