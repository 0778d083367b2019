"""``fusionrec text show``: print exactly what the language model sees for one item or user,
or (``--prompt``) the cross-encoder's prompt for one (user, item) pair."""

from __future__ import annotations

import argparse
import sys

from fusionrec.cli.main import UserError


def register(subparsers) -> None:
    text = subparsers.add_parser("text", help="inspect the texts fed to the language model")
    commands = text.add_subparsers(dest="text_command", metavar="SUBCOMMAND")
    text.set_defaults(func=lambda args: text.print_help() or 0)

    show = commands.add_parser(
        "show", help="print the text of one item or user, or a cross-encoder prompt",
        description="Prints the PII-scrubbed, budgeted text the encoder reads for one item or "
                    "user of the full dataset (ids are the raw ids of the source files). With "
                    "--prompt and both --user and --item: the cross-encoder's two prompt texts "
                    "for that pair (user context, a [SEP] line, candidate), built by the code "
                    "the model trains with, and their token counts against the budget (on "
                    "stderr). Settings: the cross-encoder defaults over the full dataset "
                    "(--preset/--spec), a run config's model and split (--config), or a trained "
                    "run (--run).")
    source = show.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", help="preset name, e.g. lastfm, lastfm-kg, ml-100k")
    source.add_argument("--spec", help="a dataset spec.yaml")
    source.add_argument("--config", help="with --prompt: a cross-encoder run config (its data, "
                                         "protocol split and model settings)")
    source.add_argument("--run", metavar="RUN_DIR",
                        help="with --prompt: a trained cross-encoder run folder")
    show.add_argument("--item", metavar="ID", help="raw item id")
    show.add_argument("--user", metavar="ID", help="raw user id")
    show.add_argument("--prompt", action="store_true",
                      help="print the cross-encoder prompt of the --user/--item pair")
    show.add_argument("--data-dir", help="data root (default: $FUSIONREC_DATA or "
                                         "~/.cache/fusionrec/data)")
    show.add_argument("--max-length", type=int, default=128,
                      help="encoder max_length the text is budgeted for (default: %(default)s; "
                           "with --prompt the model's max_length rules)")
    show.set_defaults(func=_show)


def load_for_cli(spec_or_preset: str, data_dir: str | None):
    """The dataset of a preset or spec (a :class:`DataError` reaches the CLI's one catch)."""
    from fusionrec.data.load import load_dataset

    dataset, _ = load_dataset(spec_or_preset, data_dir)
    return dataset


def _show(args: argparse.Namespace) -> int:
    from fusionrec.text.budget import count_tokens
    from fusionrec.text.items import ItemTextualiser
    from fusionrec.text.options import TextOptions
    from fusionrec.text.users import UserTextualiser

    if args.prompt:
        from fusionrec.cli.prompt_show import show_prompt

        return show_prompt(args)
    if (args.item is None) == (args.user is None):
        raise UserError("give exactly one of --item or --user (both only with --prompt)")
    if args.config or args.run:
        raise UserError("--config and --run need --prompt; use --preset or --spec")
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
