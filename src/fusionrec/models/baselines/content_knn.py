"""Content kNN on language-model embeddings of item text.

Each item's text (textualised from ``split.features``, so only leak-free sources are read) is
encoded once through the embedding cache, exactly as
``fusionrec.encoders.features.text_features`` encodes items (same texts, same cache entries),
but without encoding user texts, which this model never reads; a user's profile is the mean of the
unit-normalised embeddings of the user's training items, and ``score(u, i)`` is the cosine
between the profile and item ``i``. Users without training items score 0 everywhere. No
gradient training: ``fit`` is one encoding pass (through the embedding cache) and one sparse
product. On CTR splits the cosine is mapped to a logit by Platt scaling on the validation rows
(see :func:`~fusionrec.models.baselines.item_knn.platt_scaling`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from fusionrec.data.split import Split
from fusionrec.models.baselines.item_knn import platt_scaling, user_item_matrix
from fusionrec.models.baselines.persist import load_model_files, save_model_files
from fusionrec.models.baselines.ranking import SeenItems, recommend_by_scores


def item_text_vectors(features, config, progress: bool = False) -> np.ndarray:
    """``(n_items, d)`` LM embeddings of the item texts of ``features`` (cached)."""
    from fusionrec.encoders.factory import build_encoder
    from fusionrec.encoders.features import encode_cached
    from fusionrec.text.items import ItemTextualiser
    from fusionrec.text.options import TextOptions

    textualiser = ItemTextualiser(features, TextOptions.for_max_length(config.max_length))
    texts = [textualiser.text(i) for i in range(features.n_items)]
    vectors, _ = encode_cached(texts, build_encoder(config), config.resolved_cache_dir(),
                               textualiser.version, progress)
    return vectors


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)


class ContentKNN:
    """Parameters: ``encoder`` (an ``EncoderConfig`` or mapping; e.g. ``{"model":
    "hashing:64"}`` for tests, the bundled MiniLM by default) and ``calibrate`` (Platt scaling
    on CTR splits). :meth:`set_item_vectors` supplies precomputed item embeddings instead."""

    name: ClassVar[str] = "content-knn"
    SMOKE_PARAMS: ClassVar[dict] = {"encoder": {"model": "hashing:32"}}

    def __init__(self, encoder=None, calibrate: bool = True) -> None:
        from fusionrec.encoders.config import EncoderConfig

        if encoder is None or isinstance(encoder, EncoderConfig):
            self.encoder = encoder or EncoderConfig()
        elif isinstance(encoder, Mapping):
            self.encoder = EncoderConfig.from_dict(encoder)
        else:
            raise ValueError(f"encoder must be an EncoderConfig or a mapping, got {encoder!r}")
        self.calibrate = bool(calibrate)
        self.item_vectors = None

    def get_params(self) -> dict[str, Any]:
        return {"encoder": self.encoder.to_dict(), "calibrate": self.calibrate}

    def set_item_vectors(self, vectors: np.ndarray) -> "ContentKNN":
        """Use these ``(n_items, d)`` item embeddings rather than encoding the split's texts."""
        self.item_vectors = np.asarray(vectors, dtype=np.float32)
        return self

    def fit(self, split: Split) -> "ContentKNN":
        features = split.features
        if self.item_vectors is not None:
            vectors = self.item_vectors
        else:
            if features.item_text is None and features.item_attributes is None \
                    and features.kg is None:
                raise ValueError(f"content-knn needs item text (item_text, item_attributes or "
                                 f"kg), but dataset {features.name!r} has none")
            vectors = item_text_vectors(features, self.encoder)
        if vectors.shape[0] != features.n_items:
            raise ValueError(f"content-knn: {vectors.shape[0]} item vectors for "
                             f"{features.n_items} items")
        self.item_vectors_ = _unit_rows(vectors)                     # (n_items, d)
        self.seen_ = SeenItems.from_pairs(split.train, features.n_users)
        rating = user_item_matrix(self.seen_, features.n_items)      # (n_users, n_items) 0/1
        self.user_vectors_ = _unit_rows(np.asarray(rating @ self.item_vectors_))  # mean, then unit
        self.logit_ = None  # top-K: rank by the cosine
        if split.task == "ctr":
            valid = split.valid
            self.logit_ = (platt_scaling(self._cosine(valid.user, valid.item), valid.label)
                           if self.calibrate else (1.0, 0.0))
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "item_vectors_"):
            raise RuntimeError("ContentKNN is not fitted; call fit(split) first")

    def _cosine(self, users, items) -> np.ndarray:
        u, i = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        return np.einsum("nd,nd->n", self.user_vectors_[u], self.item_vectors_[i])

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Top-K splits: the cosine. CTR splits: the calibrated logit."""
        self._check_fitted()
        cosine = self._cosine(users, items)
        if self.logit_ is None:
            return cosine
        a, b = self.logit_
        return (a * cosine + b).astype(np.float32)

    def score_all(self, users: np.ndarray) -> np.ndarray:
        return self.user_vectors_[np.asarray(users, dtype=np.int64)] @ self.item_vectors_.T

    def recommend(self, users: np.ndarray, k: int = 10,
                  exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        return recommend_by_scores(self.score_all, users, k, self.seen_, exclude_seen)

    def save(self, directory: str | Path) -> Path:
        self._check_fitted()
        return save_model_files(directory, self.name, self.get_params(), {
            "item_vectors": self.item_vectors_, "user_vectors": self.user_vectors_,
            "seen_indptr": self.seen_.indptr, "seen_indices": self.seen_.indices},
            state={"logit": None if self.logit_ is None else list(self.logit_)})

    @classmethod
    def load(cls, directory: str | Path) -> "ContentKNN":
        meta, tensors = load_model_files(directory, cls.name)
        model = cls(**meta["params"])
        model.item_vectors_ = tensors["item_vectors"]
        model.user_vectors_ = tensors["user_vectors"]
        model.seen_ = SeenItems(tensors["seen_indptr"], tensors["seen_indices"])
        logit = meta["state"]["logit"]
        model.logit_ = None if logit is None else tuple(logit)
        return model
