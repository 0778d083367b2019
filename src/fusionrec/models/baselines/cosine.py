"""Shared scoring for the models that rank by a cosine between user and item vectors.

Subclasses build the vectors in ``fit`` (from LM text embeddings, item-profile means, ...) and
hand them to :meth:`CosineScorer._set_vectors`; scoring, calibration, top-K and persistence are
the same for all of them. On CTR splits the cosine is mapped to a logit by Platt scaling on the
validation rows (increasing, so AUC and rankings are unchanged; F1/log-loss become meaningful).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from fusionrec.data.split import Split
from fusionrec.models.baselines.item_knn import platt_scaling
from fusionrec.models.common.persist import load_model_files, save_model_files
from fusionrec.models.common.ranking import ScoreAllRanking, SeenItems


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)


@dataclass(frozen=True)
class CosineConfig:
    """``model.params`` of the cosine models (``content-knn``, ``lm-zero-shot``)."""

    # LM encoder settings (the encoder section's keys); default: the run's encoder section,
    # else the bundled all-MiniLM-L6-v2
    encoder: Mapping[str, Any] | None = None
    calibrate: bool = True  # Platt scaling of the cosine on the validation rows of CTR splits


class CosineScorer(ScoreAllRanking):
    """Base for cosine models. Parameters: ``encoder`` (an ``EncoderConfig`` or mapping; the
    bundled MiniLM by default, ``{"model": "hashing:32"}`` in unit tests) and ``calibrate``."""

    name: ClassVar[str] = "cosine"
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

    def used_sources(self) -> tuple[str, ...]:
        return tuple(getattr(self, "sources_", ()))  # those the fitted data held

    def get_params(self) -> dict[str, Any]:
        return {"encoder": self.encoder.to_dict(), "calibrate": self.calibrate}

    def _set_vectors(self, split: Split, user_vectors: np.ndarray,
                     item_vectors: np.ndarray) -> None:
        features = split.features
        self.user_vectors_ = unit_rows(user_vectors)   # (n_users, d)
        self.item_vectors_ = unit_rows(item_vectors)   # (n_items, d)
        self.sources_ = tuple(features.sources)
        self.seen_ = SeenItems.from_pairs(split.train, features.n_users)
        self.logit_ = None  # top-K: rank by the cosine itself
        if split.task == "ctr":
            valid = split.valid
            self.logit_ = (platt_scaling(self._cosine(valid.user, valid.item), valid.label)
                           if self.calibrate else (1.0, 0.0))

    def _check_fitted(self) -> None:
        if not hasattr(self, "item_vectors_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(split) first")

    def _cosine(self, users, items) -> np.ndarray:
        u, i = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        return np.einsum("nd,nd->n", self.user_vectors_[u], self.item_vectors_[i])

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Top-K splits: the cosine. CTR splits: the calibrated logit of the cosine."""
        self._check_fitted()
        cosine = self._cosine(users, items)
        if self.logit_ is None:
            return cosine
        a, b = self.logit_
        return (a * cosine + b).astype(np.float32)

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """``(len(users), n_items)`` cosines."""
        return self.user_vectors_[np.asarray(users, dtype=np.int64)] @ self.item_vectors_.T

    def save(self, directory: str | Path) -> Path:
        self._check_fitted()
        return save_model_files(directory, self.name, self.get_params(), {
            "user_vectors": self.user_vectors_, "item_vectors": self.item_vectors_,
            "seen_indptr": self.seen_.indptr, "seen_indices": self.seen_.indices},
            state={"logit": None if self.logit_ is None else list(self.logit_),
                   "sources": list(self.sources_)})

    @classmethod
    def load(cls, directory: str | Path):
        meta, tensors = load_model_files(directory, cls.name)
        model = cls(**meta["params"])
        model.user_vectors_ = tensors["user_vectors"]
        model.item_vectors_ = tensors["item_vectors"]
        model.seen_ = SeenItems(tensors["seen_indptr"], tensors["seen_indices"])
        logit, model.sources_ = meta["state"]["logit"], tuple(meta["state"]["sources"])
        model.logit_ = None if logit is None else tuple(logit)
        return model
