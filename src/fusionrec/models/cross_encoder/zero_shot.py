"""Zero-shot scores: what the *untrained* language model says, before any labelled row.

- ``history-similarity``: mean cosine between the candidate's text embedding and the row's
  liked history minus the disliked history, signed per entry (the hybrid head's
  ``similarity_signed`` column on its own).
- ``prompt-cosine``: cosine between the embeddings of the prompt's two sides (user context,
  candidate), i.e. the fused prompt read as a bi-encoder query; with ``sources`` switched on
  and off this gives a cheap ablation of what each prompt source carries.

Neither reads a label other than the row's own history labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from fusionrec.data.schema import Dataset
from fusionrec.data.split import Pairs
from fusionrec.models.cross_encoder.config import CrossEncoderConfig
from fusionrec.models.params import one_of

METHODS = ("history-similarity", "prompt-cosine")


@dataclass(frozen=True)
class ZeroShotConfig(CrossEncoderConfig):
    """``model.params`` of ``cross-encoder-zero-shot``: a ``method`` plus the cross-encoder's
    own settings (prompt sources, history size, ``feature_model``, ...)."""

    method: str = "history-similarity"  # history-similarity | prompt-cosine

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of("cross-encoder-zero-shot", "method", self.method, METHODS)


def zero_shot_scores(features: Dataset, pairs: Pairs, method: str,
                     config: CrossEncoderConfig | None = None,
                     sources: Sequence[str] | None = None) -> np.ndarray:
    """One score per row of ``pairs`` (higher = more likely liked)."""
    from fusionrec.models.cross_encoder.history import row_history, user_histories
    from fusionrec.models.cross_encoder.prompts import PromptBuilder, PromptPieces
    from fusionrec.models.cross_encoder.side_features import build_tables, side_matrix

    if method not in METHODS:
        raise ValueError(f"unknown zero-shot method {method!r}; known: {METHODS}")
    cfg = config or CrossEncoderConfig()
    sources = tuple(sources or cfg.prompt_sources)
    fb_items, fb_labels = user_histories(features, cfg.history_size + 1)
    history = row_history(pairs, fb_items, fb_labels, cfg.history_size)
    pieces = PromptPieces.from_dataset(features, sources, cfg.item_budget)
    if method == "history-similarity":
        cfg = cfg.replace(side_features=("positivity", "similarity"))
        tables, _, _ = build_tables(features, pieces.item_texts, cfg, np.zeros(0, np.int64),
                                    np.zeros(0, np.float32))
        return side_matrix(("similarity",), tables, pairs.item, history)[:, 1].astype(np.float64)
    from fusionrec.encoders.config import EncoderConfig
    from fusionrec.encoders.factory import build_encoder
    from fusionrec.encoders.features import encode_cached

    builder = PromptBuilder(pieces, sources, cfg.max_length, cfg.item_budget, cfg.item_noun)
    prompts = builder.build(pairs.user, pairs.item, history)
    enc_config = EncoderConfig(model=cfg.feature_model or cfg.model, max_length=cfg.max_length,
                               cache_dir=cfg.cache_dir, num_threads=cfg.num_threads)
    encoder = build_encoder(enc_config)
    root = enc_config.resolved_cache_dir()
    users, _ = encode_cached([a for a, _ in prompts], encoder, root, "cross-encoder-user-1",
                             cfg.progress)
    items, _ = encode_cached([b for _, b in prompts], encoder, root, "cross-encoder-cand-1",
                             cfg.progress)
    users = users / np.maximum(np.linalg.norm(users, axis=1, keepdims=True), 1e-12)
    items = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-12)
    return np.sum(users * items, axis=1).astype(np.float64)
