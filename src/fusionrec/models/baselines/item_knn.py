"""Item-based k-nearest-neighbours (cosine over training interactions, with shrinkage).

``sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i| |U_j|) + shrink)`` over the binary user–item matrix of
training positives (``U_i``: users with a training positive for ``i``). Each item keeps its
``k`` most similar other items; ``score(u, i)`` sums the similarities between ``i`` and the
neighbours of ``i`` the user has in training. Nothing is trained by gradient; ``fit`` is a few
sparse products.

On CTR splits the raw sum (unbounded, never negative) is turned into a calibrated logit
``a * log1p(sum) + b`` by Platt scaling on the validation rows, so that ``sigmoid(score)`` is a
probability: AUC is unchanged (the map is increasing) while log-loss and accuracy become meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fusionrec.data.split import Pairs, Split
from fusionrec.models.common.persist import load_model_files, save_model_files
from fusionrec.models.common.ranking import ScoreAllRanking, SeenItems
from fusionrec.models.params import at_least


def platt_scaling(x: np.ndarray, labels: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """``(a, b)`` maximising the likelihood of ``labels`` under ``sigmoid(a x + b)`` (Newton's
    method on a lightly ridge-regularised 1-D logistic regression). ``(1, 0)`` when the labels
    hold one class only or the fit does not rank positives higher (``a <= 0``)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if len(y) == 0 or y.min() == y.max():
        return 1.0, 0.0
    design = np.stack([x, np.ones_like(x)], axis=1)  # (n, 2)
    w = np.zeros(2)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        grad = design.T @ (p - y) + 1e-6 * w
        hess = (design * (p * (1 - p))[:, None]).T @ design + 1e-6 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    if not np.all(np.isfinite(w)) or w[0] <= 0:
        return 1.0, 0.0
    return float(w[0]), float(w[1])


def user_item_matrix(seen: SeenItems, n_items: int):
    """Binary ``(n_users, n_items)`` CSR matrix of training positives."""
    from scipy import sparse

    data = np.ones(len(seen.indices), dtype=np.float32)
    return sparse.csr_matrix((data, seen.indices, seen.indptr), shape=(seen.n_users, n_items))


def top_per_row(matrix, k: int):
    """Keep the ``k`` largest entries of every row of a CSR matrix (vectorised over rows)."""
    from scipy import sparse

    coo = matrix.tocoo()
    order = np.lexsort((-coo.data, coo.row))  # by row, largest first
    rows = coo.row[order]
    starts = np.searchsorted(rows, rows, side="left")
    keep = order[(np.arange(len(rows)) - starts) < k]
    return sparse.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=matrix.shape)


@dataclass(frozen=True)
class ItemKNNConfig:
    """``model.params`` of ``item-knn``."""

    k: int = 100           # neighbours kept per item (0 keeps every neighbour)
    shrink: float = 0.0    # added to the cosine denominator: damps similarities few users back
    calibrate: bool = True  # Platt scaling on the validation rows of CTR splits

    def __post_init__(self) -> None:
        at_least("item-knn", "k", self.k, 0)
        at_least("item-knn", "shrink", self.shrink, 0)


class ItemKNN(ScoreAllRanking):
    """Item–item cosine kNN. Parameters: ``k`` neighbours per item (0 = all), ``shrink``
    (added to the cosine denominator, damping similarities backed by few users), ``calibrate``
    (Platt scaling on the validation rows of CTR splits)."""

    name: ClassVar[str] = "item-knn"
    SMOKE_PARAMS: ClassVar[dict] = {"k": 20}

    def __init__(self, k: int = 100, shrink: float = 0.0, calibrate: bool = True) -> None:
        ItemKNNConfig(k, shrink, calibrate)  # validates
        self.k, self.shrink, self.calibrate = k, float(shrink), bool(calibrate)

    def get_params(self) -> dict[str, Any]:
        return {"k": self.k, "shrink": self.shrink, "calibrate": self.calibrate}

    def fit(self, split: Split) -> "ItemKNN":
        from scipy import sparse

        n_items = split.features.n_items
        self.seen_ = SeenItems.from_pairs(split.train, split.features.n_users)
        self._rating_cache = None
        rating = user_item_matrix(self.seen_, n_items)
        co = (rating.T @ rating).tocsr()                      # (n_items, n_items) co-counts
        norm = np.sqrt(co.diagonal()).astype(np.float64)      # sqrt(|U_i|)
        co.setdiag(0)
        co.eliminate_zeros()
        coo = co.tocoo()
        sims = coo.data / (norm[coo.row] * norm[coo.col] + self.shrink)
        similarity = sparse.csr_matrix((sims.astype(np.float32), (coo.row, coo.col)),
                                       shape=co.shape)
        # row i holds the neighbours of item i: the items whose presence raises i's score
        self.similarity_ = top_per_row(similarity, self.k) if self.k else similarity
        self.logit_ = None  # top-K: rank by the raw sum
        if split.task == "ctr":
            valid: Pairs = split.valid
            self.logit_ = (platt_scaling(np.log1p(self._raw(valid.user, valid.item)), valid.label)
                           if self.calibrate else (1.0, 0.0))
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "similarity_"):
            raise RuntimeError("ItemKNN is not fitted; call fit(split) first")

    def _rating(self):
        if getattr(self, "_rating_cache", None) is None:
            self._rating_cache = user_item_matrix(self.seen_, self.similarity_.shape[0])
        return self._rating_cache

    def _raw(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Sum of similarities between each row's item and that user's training items."""
        rating = self._rating()
        u, i = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        out = np.empty(len(u), dtype=np.float64)
        for start in range(0, len(u), 16384):  # bound the gathered sparse rows
            rows = slice(start, start + 16384)
            product = rating[u[rows]].multiply(self.similarity_[i[rows]])
            out[rows] = np.asarray(product.sum(axis=1)).ravel()
        return out

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Top-K splits: the similarity sum. CTR splits: the calibrated logit."""
        self._check_fitted()
        raw = self._raw(users, items)
        if self.logit_ is None:
            return raw.astype(np.float32)
        a, b = self.logit_
        return (a * np.log1p(raw) + b).astype(np.float32)

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """``(len(users), n_items)`` similarity sums (the ranking needs no calibration)."""
        self._check_fitted()
        batch = self._rating()[np.asarray(users, dtype=np.int64)]
        return (batch @ self.similarity_.T).toarray()

    def save(self, directory: str | Path) -> Path:
        self._check_fitted()
        sim = self.similarity_
        return save_model_files(directory, self.name, self.get_params(), {
            "sim_indptr": sim.indptr.astype(np.int64), "sim_indices": sim.indices.astype(np.int64),
            "sim_data": sim.data, "seen_indptr": self.seen_.indptr,
            "seen_indices": self.seen_.indices},
            state={"logit": None if self.logit_ is None else list(self.logit_)})

    @classmethod
    def load(cls, directory: str | Path) -> "ItemKNN":
        from scipy import sparse

        meta, t = load_model_files(directory, cls.name)
        model = cls(**meta["params"])
        n_items = len(t["sim_indptr"]) - 1
        model.similarity_ = sparse.csr_matrix(
            (t["sim_data"], t["sim_indices"], t["sim_indptr"]), shape=(n_items, n_items))
        model.seen_ = SeenItems(t["seen_indptr"], t["seen_indices"])
        logit = meta["state"]["logit"]
        model.logit_ = None if logit is None else tuple(logit)
        return model
