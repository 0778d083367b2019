"""``fusionrec text show``: print exactly what the language model sees for one item or user."""

from __future__ import annotations

import argparse
import sys

from fusionrec.cli.main import UserError


def register(subparsers) -> None:
    text = subparsers.add_parser("text", help="inspect the texts fed to the language model")
    commands = text.add_subparsers(dest="text_command", metavar="SUBCOMMAND")
    text.set_defaults(func=lambda args: text.print_help() or 0)

    show = commands.add_parser(
        "show", help="print the text of one item or user",
        description="Prints the PII-scrubbed, budgeted text the encoder reads for one item or "
                    "user of the full dataset (ids are the raw ids of the source files).")
    source = show.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", help="preset name, e.g. lastfm, lastfm-kg, ml-100k")
    source.add_argument("--spec", help="a dataset spec.yaml")
    who = show.add_mutually_exclusive_group(required=True)
    who.add_argument("--item", metavar="ID", help="raw item id")
    who.add_argument("--user", metavar="ID", help="raw user id")
    show.add_argument("--data-dir", help="data root (default: $FUSIONREC_DATA or "
                                         "~/.cache/fusionrec/data)")
    show.add_argument("--max-length", type=int, default=128,
                      help="encoder max_length the text is budgeted for (default: %(default)s)")
    show.set_defaults(func=_show)


def load_for_cli(spec_or_preset: str, data_dir: str | None):
    """``load_dataset`` with data problems turned into one-line user errors."""
    from fusionrec.data.errors import DataError
    from fusionrec.data.load import load_dataset

    try:
        dataset, _ = load_dataset(spec_or_preset, data_dir)
    except (DataError, FileNotFoundError) as error:
        raise UserError(str(error)) from None
    return dataset


def _show(args: argparse.Namespace) -> int:
    from fusionrec.text.budget import count_tokens
    from fusionrec.text.items import ItemTextualiser
    from fusionrec.text.options import TextOptions
    from fusionrec.text.users import UserTextualiser

    if args.max_length < 16:
        raise UserError(f"--max-length must be >= 16, got {args.max_length}")
    dataset = load_for_cli(args.preset or args.spec, args.data_dir)
    options = TextOptions.for_max_length(args.max_length)
    kind, raw = ("item", args.item) if args.item is not None else ("user", args.user)
    vocabulary = dataset.items if kind == "item" else dataset.users
    if raw not in vocabulary:
        example = ", ".join(vocabulary.ids[:3])
        raise UserError(f"{kind} id {raw!r} is not in dataset {dataset.name} "
                        f"(raw ids look like: {example})")
    index = vocabulary.index(raw)
    if kind == "item":
        textualiser = ItemTextualiser(dataset, options)
    else:
        textualiser = UserTextualiser(dataset, options)
    text = textualiser.text(index)
    print(text)
    print(f"[{dataset.name} {kind} {raw}: ~{count_tokens(text)} tokens of {options.budget} "
          f"budgeted, {textualiser.version}]", file=sys.stderr)
    return 0
