"""Neighbourhood link scores on the training friendship graph: common neighbours, Adamic–Adar
and friend degree (popularity of a person).

With ``A`` the 0/1 adjacency and ``w_z`` a weight per middle person ``z``,
``score(u, v) = sum_z A[u, z] w_z A[z, v]``: ``w_z = 1`` counts common neighbours;
``w_z = 1 / log(deg z)`` is Adamic–Adar (Adamic & Adar 2003), which discounts friends shared
through a hub. ``friend-degree`` scores ``v`` by ``log(1 + deg v)`` for everyone.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from fusionrec.data.split import Split
from fusionrec.models.common.persist import load_model_files, save_model_files
from fusionrec.models.common.ranking import ScoreAllRanking
from fusionrec.models.links.graph import (
    csr_arrays,
    csr_from_arrays,
    friend_matrix,
    link_seen,
    require_links,
)

def prior_scorer(name: str, adjacency):
    """The fitted neighbourhood scorer ``name`` (one of
    :data:`~fusionrec.models.links.params.PRIORS`) over ``adjacency``."""
    return {"adamic-adar": AdamicAdar, "common-neighbours": CommonNeighbours}[name] \
        .from_adjacency(adjacency)


class _GraphScorer(ScoreAllRanking):
    """Shared verbs; subclasses define :meth:`score_all` from ``adjacency_`` and ``degree_``."""

    name: ClassVar[str]
    TASKS: ClassVar[tuple[str, ...]] = ("links",)
    sources: ClassVar[tuple[str, ...]] = ("social",)
    SMOKE_PARAMS: ClassVar[dict] = {}

    def get_params(self) -> dict:
        return {}

    def fit(self, split: Split):
        require_links(split, self.name)
        self._set_graph(friend_matrix(split.features))
        return self

    @classmethod
    def from_adjacency(cls, adjacency):
        """A fitted scorer over ``adjacency`` (a symmetric 0/1 CSR friend matrix)."""
        model = cls()
        model._set_graph(adjacency)
        return model

    def _set_graph(self, adjacency) -> None:
        self.adjacency_ = adjacency
        self.degree_ = np.asarray(adjacency.sum(axis=1)).ravel().astype(np.float64)
        self.seen_ = link_seen(adjacency)

    def _check_fitted(self) -> None:
        if not hasattr(self, "adjacency_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(split) first")

    def score_all(self, users: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score(self, users: np.ndarray, others: np.ndarray) -> np.ndarray:
        self._check_fitted()
        users, others = np.asarray(users, np.int64), np.asarray(others, np.int64)
        found = np.zeros(len(users))
        for start in range(0, len(users), 1024):  # bounded (batch, n_users) blocks
            rows = self.score_all(users[start:start + 1024])
            found[start:start + 1024] = rows[np.arange(len(rows)), others[start:start + 1024]]
        return found

    def save(self, directory: str | Path) -> Path:
        self._check_fitted()
        return save_model_files(directory, self.name, self.get_params(),
                                csr_arrays(self.adjacency_),
                                state={"n_users": int(self.adjacency_.shape[0])})

    @classmethod
    def load(cls, directory: str | Path):
        meta, tensors = load_model_files(directory, cls.name)
        model = cls(**meta["params"])
        model._set_graph(csr_from_arrays(tensors, int(meta["state"]["n_users"])))
        return model


class _PathScorer(_GraphScorer):
    """``A[users] diag(w) A``: two-hop paths weighted by their middle person."""

    def middle_weights(self) -> np.ndarray:
        raise NotImplementedError

    def score_all(self, users: np.ndarray) -> np.ndarray:
        from scipy import sparse

        self._check_fitted()
        rows = self.adjacency_[np.asarray(users, dtype=np.int64)]  # (B, n)
        weighted = rows @ sparse.diags(self.middle_weights())
        return np.asarray((weighted @ self.adjacency_).todense(), dtype=np.float64)


class CommonNeighbours(_PathScorer):
    """Number of training friends two people share."""

    name: ClassVar[str] = "common-neighbours"

    def middle_weights(self) -> np.ndarray:
        return np.ones_like(self.degree_)


class AdamicAdar(_PathScorer):
    """Shared friends weighted by ``1 / log(degree)``: a friend with few friends says more."""

    name: ClassVar[str] = "adamic-adar"

    def middle_weights(self) -> np.ndarray:
        # a shared friend has degree >= 2, so log > 0; others never sit on a 2-path
        return np.where(self.degree_ > 1, 1.0 / np.log(np.maximum(self.degree_, 2.0)), 0.0)


class FriendDegree(_GraphScorer):
    """Popularity by degree: everyone gets the people with the most training friends."""

    name: ClassVar[str] = "friend-degree"

    def score_all(self, users: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return np.broadcast_to(np.log1p(self.degree_), (len(users), len(self.degree_)))
