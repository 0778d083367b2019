"""The prompt of one (user, candidate) pair, as the cross-encoder builds it, with its token counts.

Used by ``fusionrec text show --prompt``. The texts come from the same code the model trains
and scores with -- :class:`~fusionrec.models.cross_encoder.prompts.PromptPieces` built from the
features, :class:`~fusionrec.models.cross_encoder.prompts.PromptBuilder`, and the row history
of :func:`~fusionrec.models.common.history.row_history` (the row's own history when the
pair is a row of the split, else the user's most recent training items) -- counted with the
model's own tokenizer when the config uses a language model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from fusionrec.data.split import Pairs, Split
from fusionrec.models.cross_encoder.config import CrossEncoderConfig
from fusionrec.models.cross_encoder.prompts import SPECIAL_TOKENS


@dataclass(frozen=True)
class PromptView:
    """The two texts the LM reads (``[CLS] user_text [SEP] item_text [SEP]``) and their sizes."""

    user_text: str
    item_text: str
    user_tokens: int      # without special tokens
    item_tokens: int
    total_tokens: int     # the pair as the model reads it, special tokens included
    user_budget: int
    item_budget: int
    max_length: int
    history: str          # where the row's history came from
    counter: str          # what counted the tokens

    def summary(self) -> str:
        return (f"user context {self.user_tokens}/{self.user_budget} tokens, candidate "
                f"{self.item_tokens}/{self.item_budget}, pair {self.total_tokens}/"
                f"{self.max_length} with special tokens ({self.counter}); history: "
                f"{self.history}")


def find_row(split: Split, user: int, item: int) -> tuple[Pairs, str]:
    """The pair as a one-row :class:`Pairs`: the first matching row of test, valid or train
    (with its own history, if the protocol gives rows one), else a row without history."""
    for part in ("test", "valid", "train"):
        pairs = split.part(part)
        hits = np.flatnonzero((pairs.user == user) & (pairs.item == item))
        if hits.size:
            row = pairs.take(hits[:1])
            own = row.history_items is not None and bool(np.any(row.history_items >= 0))
            where = f"{part} row {int(hits[0])}'s own" if own else \
                "the user's most recent training items"
            return row, where
    return (Pairs(np.array([user]), np.array([item]), np.zeros(1, np.float32)),
            "the user's most recent training items")


def load_counter(config: CrossEncoderConfig) -> tuple[Callable[[str], int], object | None, str]:
    """``(count, tokenizer or None, description)``: the LM's tokenizer when the config uses an
    LM (as training does), else the approximate counter of :mod:`fusionrec.text.budget`."""
    from fusionrec.text.budget import count_tokens

    if not config.uses_lm:
        return count_tokens, None, "approximate count, no LM"
    from transformers import AutoTokenizer

    from fusionrec.encoders.resolve import resolve_model
    from fusionrec.models.cross_encoder.prompts import tokenizer_counter

    resolved = resolve_model(config.model)
    tokenizer = AutoTokenizer.from_pretrained(str(resolved.path), local_files_only=True)
    if tokenizer.pad_token is None:  # as the backbone does for GPT-style tokenizers
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer_counter(tokenizer), tokenizer, f"{resolved.model_id} tokenizer"


def view(user_text: str, item_text: str, config: CrossEncoderConfig, history: str,
         count: Callable[[str], int], tokenizer, counter: str) -> PromptView:
    total = (len(tokenizer(user_text, item_text)["input_ids"]) if tokenizer is not None
             else count(user_text) + count(item_text) + SPECIAL_TOKENS)
    return PromptView(user_text, item_text, count(user_text), count(item_text), total,
                      config.max_length - config.item_budget - SPECIAL_TOKENS,
                      config.item_budget, config.max_length, history, counter)


def pair_prompt(split: Split, config: CrossEncoderConfig, user: int, item: int) -> PromptView:
    """The prompt a cross-encoder with ``config`` fitted on ``split`` builds for (user, item)."""
    from fusionrec.models.common.history import row_history, user_histories
    from fusionrec.models.cross_encoder.prompts import PromptBuilder, PromptPieces

    count, tokenizer, counter = load_counter(config)
    features = split.features
    pieces = PromptPieces.from_dataset(features, config.prompt_sources, config.item_budget, count)
    fallback_items, fallback_labels = user_histories(features, config.history_size + 1)
    row, where = find_row(split, user, item)
    history = row_history(row, fallback_items, fallback_labels, config.history_size)
    builder = PromptBuilder(pieces, config.prompt_sources, config.max_length, config.item_budget,
                            config.item_noun, count)
    (user_text, item_text), = builder.build(row.user, row.item, history)
    return view(user_text, item_text, config, where, count, tokenizer, counter)


def fitted_prompt(model, split: Split, user: int, item: int) -> PromptView:
    """The prompt a fitted (or loaded) ``CrossEncoderRecommender`` builds for (user, item)."""
    from fusionrec.models.cross_encoder.prompts import tokenizer_counter
    from fusionrec.text.budget import count_tokens

    row, where = find_row(split, user, item)
    (user_text, item_text), = model.prompts(row)
    tokenizer = getattr(model, "tokenizer_", None)
    count = tokenizer_counter(tokenizer) if tokenizer is not None else count_tokens
    counter = "the model's tokenizer" if tokenizer is not None else "approximate count, no LM"
    return view(user_text, item_text, model.config, where, count, tokenizer, counter)
