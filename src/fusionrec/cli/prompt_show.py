"""``fusionrec text show --prompt``: the cross-encoder's prompt for one (user, item) pair.

Stdout holds the user context (the pair's first segment), a ``[SEP]`` line, then the candidate
text (the second segment): the model reads ``[CLS] user context [SEP] candidate [SEP]``. Token
counts against the budget go to stderr. Three sources of settings:

- ``--preset`` / ``--spec``: cross-encoder defaults, the full dataset as features, the user's
  most recent interactions as history;
- ``--config``: a run config's cross-encoder parameters and its protocol's split (a pair that
  is a row of the split shows that row's own history, e.g. a TALLRec record's 10 movies);
- ``--run``: a trained cross-encoder and its own split, through the model's ``prompts``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from fusionrec.cli.main import UserError

PROMPT_MODELS = ("cross-encoder", "cross-encoder-zero-shot")
SEPARATOR = "[SEP]"


def _index(dataset, kind: str, raw: str) -> int:
    vocabulary = dataset.users if kind == "user" else dataset.items
    if raw not in vocabulary:
        example = ", ".join(vocabulary.ids[:3])
        raise UserError(f"{kind} id {raw!r} is not in dataset {dataset.name} "
                        f"(raw ids look like: {example})")
    return vocabulary.index(raw)


def _whole_dataset_split(dataset):
    """A split with no rows whose features are the whole dataset (no protocol applied)."""
    from fusionrec.data.split import Pairs, Split

    empty = Pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    return Split("none", "ctr", 0, empty, empty, empty, dataset)


def _config_model(config):
    """The cross-encoder settings of a run config (``method`` of the zero-shot model dropped)."""
    from fusionrec.models.cross_encoder.config import CrossEncoderConfig

    if config.model.name not in PROMPT_MODELS:
        raise UserError(f"--prompt needs a cross-encoder config (model.name one of "
                        f"{PROMPT_MODELS}), got model {config.model.name!r}")
    params = {k: v for k, v in dict(config.model.params).items() if k != "method"}
    return CrossEncoderConfig.from_dict(params)


def _prompt(args: argparse.Namespace):
    """``(dataset, user index, item index, PromptView)`` for the chosen settings."""
    from fusionrec.cli.loading import load_for_cli
    from fusionrec.models.cross_encoder.config import CrossEncoderConfig
    from fusionrec.models.cross_encoder.prompt_view import fitted_prompt, pair_prompt

    if args.run:
        from fusionrec.models.cross_encoder.recommender import CrossEncoderRecommender
        from fusionrec.training import artifacts
        from fusionrec.training.run import load_run_split

        config, manifest, model = artifacts.open_run(args.run)
        if not isinstance(model, CrossEncoderRecommender):  # the one model that builds prompts
            raise UserError(f"{args.run} holds model {model.name!r}, which builds no prompts; "
                            "--run needs a cross-encoder run")
        dataset, split = load_run_split(args.run, config, manifest, args.data_dir)
        user, item = _index(dataset, "user", args.user), _index(dataset, "item", args.item)
        return dataset, fitted_prompt(model, split, user, item)
    if args.config:
        from fusionrec.config import load_config
        from fusionrec.training.run import load_data, make_split

        config = load_config(args.config)
        settings = _config_model(config)
        dataset = load_data(config.data, args.data_dir).dataset
        split = make_split(dataset, config.protocol)
    else:
        settings = CrossEncoderConfig()
        dataset = load_for_cli(args.preset or args.spec, args.data_dir)
        split = _whole_dataset_split(dataset)
    user, item = _index(dataset, "user", args.user), _index(dataset, "item", args.item)
    return dataset, pair_prompt(split, settings, user, item)


def show_prompt(args: argparse.Namespace) -> int:
    if args.user is None or args.item is None:
        raise UserError("--prompt needs both --user and --item")
    try:
        dataset, view = _prompt(args)
    except OSError as error:  # an unreadable file the library does not wrap itself
        raise UserError(str(error)) from None
    print(view.user_text)
    print(SEPARATOR)
    print(view.item_text)
    print(f"[{dataset.name} user {args.user} / item {args.item}: {view.summary()}]",
          file=sys.stderr)
    return 0
