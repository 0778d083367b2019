"""Most-popular baseline: every user gets the items with the most training positives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from fusionrec.data.split import Split
from fusionrec.models.base import RecommenderBase
from fusionrec.models.common.persist import load_model_files, save_model_files
from fusionrec.models.common.ranking import SeenItems, recommend_by_scores


@dataclass(frozen=True)
class PopularityConfig:
    """``popularity`` takes no parameters."""


class Popularity(RecommenderBase):
    """Scores an item by ``log(1 + training positives)``.

    The log keeps ``sigmoid(score)`` (how CTR metrics read scores) from saturating to 1.0 for
    popular items, which would turn real differences into ties.
    """

    name: ClassVar[str] = "popularity"
    sources: ClassVar[tuple[str, ...]] = ("interactions",)  # all it reads (benchmark reports)
    # A cold user gets everyone's list; cold items all have count 0, so it cannot rank them.
    cold_start: ClassVar[frozenset[str]] = frozenset({"users"})
    SMOKE_PARAMS: ClassVar[dict] = {}  # fast settings for the shared conformance tests

    def fit(self, split: Split) -> "Popularity":
        positives = split.train.positives()
        n_items = split.features.n_items
        self.counts_ = np.bincount(positives.item, minlength=n_items).astype(np.float32)
        self.seen_ = SeenItems.from_pairs(split.train, split.features.n_users)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "counts_"):
            raise RuntimeError("Popularity is not fitted; call fit(split) first")

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return np.log1p(self.counts_[np.asarray(items, dtype=np.int64)])

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """``(len(users), n_items)`` scores: the same popularity row for every user."""
        return np.broadcast_to(np.log1p(self.counts_), (len(users), len(self.counts_)))

    def recommend(self, users: np.ndarray, k: int = 10,
                  exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        return recommend_by_scores(self.score_all, users, k, self.seen_, exclude_seen)

    def get_params(self) -> dict:
        return {}

    def save(self, directory: str | Path) -> Path:
        self._check_fitted()
        return save_model_files(directory, self.name, self.get_params(), {
            "counts": self.counts_, "seen_indptr": self.seen_.indptr,
            "seen_indices": self.seen_.indices})

    @classmethod
    def load(cls, directory: str | Path) -> "Popularity":
        meta, tensors = load_model_files(directory, cls.name)
        model = cls(**meta["params"])
        model.counts_ = tensors["counts"]
        model.seen_ = SeenItems(tensors["seen_indptr"], tensors["seen_indices"])
        return model
