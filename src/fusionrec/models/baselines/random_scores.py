"""Uniform random scores: the floor every model must clear, on any split.

``score(u, i)`` is a uniform number in (0, 1) drawn from a counter-based hash of
``(seed, u, i)``, so the same pair always gets the same score (``score`` and ``recommend``
agree, a saved model reloads to identical rankings) and the ranking of any candidate set is a
uniformly random permutation. It reads nothing, so it can score every item and user, cold or
not: under a cold-start protocol it is the chance level the issue's calibration names.
On CTR splits the score is used as a probability (AUC 0.5 in expectation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from fusionrec.data.split import Split
from fusionrec.models.common.persist import load_model_files, save_model_files
from fusionrec.models.common.ranking import ScoreAllRanking, SeenItems

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, vectorised: a bijective mix of 64-bit keys (wraps mod 2^64)."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return x ^ (x >> np.uint64(31))


def uniform_scores(seed: int, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """One uniform number in (0, 1) per ``(users[r], items[r])``, a pure function of the pair
    and ``seed``."""
    users = np.asarray(users, dtype=np.int64).astype(np.uint64)
    items = np.asarray(items, dtype=np.int64).astype(np.uint64)
    key = _splitmix64(_splitmix64(np.uint64(seed) ^ (users << np.uint64(32))) ^ items)
    # the top 53 bits as a float in [0, 1), shifted half a step so 0 and 1 never occur
    return ((key >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


@dataclass(frozen=True)
class RandomConfig:
    """``model.params`` of ``random``."""

    seed: int = 0  # which fixed uniform scores; the run's trainer seed when left out


class RandomScores(ScoreAllRanking):
    """Parameters: ``seed`` (the benchmark's ``trainer.seed`` when the config sets none)."""

    name: ClassVar[str] = "random"
    sources: ClassVar[tuple[str, ...]] = ("interactions",)  # only to skip seen items
    # Reads nothing about any entity, so a cold one is no harder than a warm one.
    cold_start: ClassVar[frozenset[str]] = frozenset({"items", "users"})
    outputs_probabilities: ClassVar[bool] = True  # CTR: the uniform score is the probability
    SMOKE_PARAMS: ClassVar[dict] = {}

    def __init__(self, seed: int = 0) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        self.seed = seed

    def get_params(self) -> dict:
        return {"seed": self.seed}

    def fit(self, split: Split) -> "RandomScores":
        self.n_items_ = int(split.features.n_items)
        self.seen_ = SeenItems.from_pairs(split.train, split.features.n_users)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "seen_"):
            raise RuntimeError("RandomScores is not fitted; call fit(split) first")

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return uniform_scores(self.seed, users, items)

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """``(len(users), n_items)`` scores."""
        users = np.asarray(users, dtype=np.int64)
        items = np.arange(self.n_items_)
        return uniform_scores(self.seed, np.repeat(users, self.n_items_),
                              np.tile(items, len(users))).reshape(len(users), self.n_items_)

    def save(self, directory: str | Path) -> Path:
        self._check_fitted()
        return save_model_files(directory, self.name, self.get_params(), {
            "seen_indptr": self.seen_.indptr, "seen_indices": self.seen_.indices},
            state={"n_items": self.n_items_})

    @classmethod
    def load(cls, directory: str | Path) -> "RandomScores":
        meta, tensors = load_model_files(directory, cls.name)
        model = cls(**meta["params"])
        model.n_items_ = int(meta["state"]["n_items"])
        model.seen_ = SeenItems(tensors["seen_indptr"], tensors["seen_indices"])
        return model
