"""``CrossEncoderZeroShot``: the untrained language model as a model, the ``shots: 0`` row.

It scores a (user, candidate) row the way :mod:`~fusionrec.models.cross_encoder.zero_shot`
does (``history-similarity``: candidate-to-liked minus candidate-to-disliked cosine of the
frozen LM's item-text embeddings over the row's history; ``prompt-cosine``: the fused prompt's
two sides read as a bi-encoder), so a suite can run it through ``fusionrec benchmark`` next to
the fine-tuned cross-encoder. It takes the cross-encoder's parameters (a suite entry can reuse a
cross-encoder config and only change ``model.name``); the training ones are unused. No label
is read: ``fit`` only embeds item texts and keeps the users' fallback histories, so it works on
a split with an empty train part. Scores are cosines, not calibrated: use AUC and rankings.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from fusionrec.data.split import Pairs, Split
from fusionrec.models.baselines.ranking import PairScoring
from fusionrec.models.cross_encoder.config import CrossEncoderConfig
from fusionrec.models.cross_encoder.zero_shot import METHODS
from fusionrec.models.params import one_of

PROMPTS_FILE = "prompts.json"


class CrossEncoderZeroShot(PairScoring):
    """``method``: one of :data:`~fusionrec.models.cross_encoder.zero_shot.METHODS`; other
    keyword arguments are :class:`CrossEncoderConfig` keys."""

    name: ClassVar[str] = "cross-encoder-zero-shot"
    outputs_probabilities: ClassVar[bool] = False
    SMOKE_PARAMS: ClassVar[dict] = {"feature_model": "hashing:32", "progress": False}

    def __init__(self, method: str = "history-similarity",
                 config: CrossEncoderConfig | dict | None = None, **params) -> None:
        one_of("cross-encoder-zero-shot", "method", method, METHODS)
        self.method = method
        if isinstance(config, CrossEncoderConfig):
            self.config = config.replace(**params) if params else config
        else:
            self.config = CrossEncoderConfig.from_dict({**(config or {}), **params})

    def get_params(self) -> dict:
        return {"method": self.method, **self.config.to_dict()}

    def fit(self, split: Split) -> "CrossEncoderZeroShot":
        from fusionrec.models.baselines.ranking import SeenItems
        from fusionrec.models.cross_encoder.history import user_histories
        from fusionrec.models.cross_encoder.prompts import PromptPieces
        from fusionrec.models.cross_encoder.side_features import build_tables

        cfg, features = self.config, split.features
        self.fallback_items_, self.fallback_labels_ = user_histories(features,
                                                                     cfg.history_size + 1)
        inter = features.interactions
        self.seen_ = SeenItems.from_pairs(Pairs(inter.user, inter.item, np.ones(len(inter))),
                                          features.n_users)
        self.pieces_ = PromptPieces.from_dataset(features, cfg.prompt_sources, cfg.item_budget)
        self.item_vectors_ = np.zeros((features.n_items, 0), np.float32)
        if self.method == "history-similarity":
            no_shots = np.zeros(0, np.int64), np.zeros(0, np.float32)
            tables, _, _ = build_tables(features, self.pieces_.item_texts,
                                        cfg.replace(side_features=("positivity", "similarity")),
                                        *no_shots, progress=cfg.progress)
            self.item_vectors_ = tables.item_vectors
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "pieces_"):
            raise RuntimeError("CrossEncoderZeroShot is not fitted; call fit(split) first")

    def score_pairs(self, pairs: Pairs) -> np.ndarray:
        """One score per row, from the row's own history (else its user's training items)."""
        from fusionrec.models.cross_encoder.history import row_history

        self._check_fitted()
        cfg = self.config
        history = row_history(pairs, self.fallback_items_, self.fallback_labels_,
                              cfg.history_size)
        if self.method == "history-similarity":
            from fusionrec.models.cross_encoder.side_features import SideTables, side_matrix

            n = len(self.item_vectors_)
            empty = np.zeros((n, 0), np.float32)
            tables = SideTables(self.item_vectors_, np.zeros(n, np.float32), empty, empty,
                                np.zeros(n, np.float32), np.zeros(n, np.float32))
            # column 1: the signed mean cosine, as zero_shot_scores reports it
            return side_matrix(("similarity",), tables, pairs.item, history)[:, 1].astype(
                np.float64)
        return self._prompt_cosine(pairs, history)

    def _prompt_cosine(self, pairs: Pairs, history) -> np.ndarray:
        from fusionrec.encoders.config import EncoderConfig
        from fusionrec.encoders.factory import build_encoder
        from fusionrec.encoders.features import encode_cached
        from fusionrec.models.cross_encoder.prompts import PromptBuilder

        cfg = self.config
        builder = PromptBuilder(self.pieces_, cfg.prompt_sources, cfg.max_length,
                                cfg.item_budget, cfg.item_noun)
        prompts = builder.build(pairs.user, pairs.item, history)
        enc_config = EncoderConfig(model=cfg.feature_model or cfg.model,
                                   max_length=cfg.max_length, cache_dir=cfg.cache_dir,
                                   num_threads=cfg.num_threads)
        encoder = build_encoder(enc_config)
        root = enc_config.resolved_cache_dir()
        sides = []
        for texts, version in (([a for a, _ in prompts], "cross-encoder-user-1"),
                               ([b for _, b in prompts], "cross-encoder-cand-1")):
            vectors, _ = encode_cached(texts, encoder, root, version, False)
            sides.append(vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True),
                                               1e-12))
        return np.sum(sides[0] * sides[1], axis=1).astype(np.float64)

    def _n_items(self) -> int:
        return len(self.pieces_.item_names)

    def save(self, directory: str | Path) -> Path:
        import json

        from fusionrec.models.baselines.persist import save_model_files

        self._check_fitted()
        directory = Path(directory)
        save_model_files(directory, self.name, self.get_params(), {
            "fallback_items": self.fallback_items_, "fallback_labels": self.fallback_labels_,
            "seen_indptr": self.seen_.indptr, "seen_indices": self.seen_.indices,
            "item_vectors": np.ascontiguousarray(self.item_vectors_, dtype=np.float32)})
        (directory / PROMPTS_FILE).write_text(json.dumps(self.pieces_.to_json()),
                                              encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "CrossEncoderZeroShot":
        import json

        from fusionrec.models.baselines.persist import load_model_files
        from fusionrec.models.baselines.ranking import SeenItems
        from fusionrec.models.cross_encoder.prompts import PromptPieces

        directory = Path(directory)
        meta, tensors = load_model_files(directory, cls.name)
        model = cls(**meta["params"])
        model.fallback_items_ = tensors["fallback_items"].astype(np.int64)
        model.fallback_labels_ = tensors["fallback_labels"].astype(np.float32)
        model.seen_ = SeenItems(tensors["seen_indptr"].astype(np.int64),
                                tensors["seen_indices"].astype(np.int64))
        model.item_vectors_ = tensors["item_vectors"].astype(np.float32)
        model.pieces_ = PromptPieces.from_json(
            json.loads((directory / PROMPTS_FILE).read_text(encoding="utf-8")))
        return model
