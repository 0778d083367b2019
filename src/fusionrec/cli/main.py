"""The ``fusionrec`` command: a thin dispatcher over one module per command group.

Each module in ``COMMAND_MODULES`` exposes ``register(subparsers)``, which adds its sub-command(s)
and sets ``func`` (taking the parsed ``argparse.Namespace`` and returning an exit code). Modules
are imported lazily per invocation so ``fusionrec --help`` stays fast.

Errors are caught here, once: any :class:`~fusionrec.errors.FusionRecError` (the library's
own, or :class:`UserError` for a bad flag) is one line on stderr, ``fusionrec: error: ...``,
and exit code ``USER_ERROR`` (2, argparse's code for a bad command line); commands do not
catch them themselves. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fusionrec.errors import FusionRecError

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


USER_ERROR = 2


class UserError(FusionRecError):
    """A bad flag or argument combination the CLI itself detects: one line, exit 2."""


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
    except FusionRecError as error:
        print(f"fusionrec: error: {one_line(error)}", file=sys.stderr)
        return USER_ERROR


def one_line(error: BaseException) -> str:
    """The error's message folded onto one line (a message may quote a multi-line value)."""
    return " ".join(str(error).split()) or type(error).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
