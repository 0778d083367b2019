"""The linear algebra behind ``content-map``: warm item factors from a truncated SVD, a ridge
path from content vectors to those factors, and the validation score that picks the ridge
penalty.

Pure numpy on small dense matrices (users × warm items for the SVD's Gram matrix, warm items ×
text dimensions for the ridge); nothing here knows about splits beyond index arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def svd_factors(matrix, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """``(user_factors (n_users, r), item_factors (n_items, r))`` of the rank-``r`` truncated
    SVD ``matrix ≈ U S Vᵀ`` with users ``U`` (orthonormal columns) and items ``V S``, where
    ``r = min(dim, rank)``.

    Putting all of ``S`` on the item side makes a squared error in an item's factors equal to
    the squared error of its scores summed over users (``‖U e‖ = ‖e‖``), so the ridge map that
    predicts these factors minimises exactly the score error. Computed from the eigenvectors of
    the smaller Gram matrix (deterministic, no random start), signs fixed so the largest entry
    of each item column is positive. ``matrix``: dense or ``scipy.sparse``.
    """
    import scipy.sparse as sp

    matrix = sp.csr_matrix(matrix, dtype=np.float64)
    transpose = matrix.shape[0] > matrix.shape[1]
    small = matrix.T.tocsr() if transpose else matrix         # (a, b) with a <= b
    gram = (small @ small.T).toarray()                        # (a, a)
    values, vectors = np.linalg.eigh(gram)                    # ascending, (a,), (a, a)
    keep = values > 1e-9 * max(float(values.max(initial=0.0)), 1.0)
    order = np.argsort(-values[keep])[:dim]
    s = np.sqrt(values[keep][order])                          # (r,)
    left = vectors[:, keep][:, order]                         # (a, r) orthonormal
    right = np.asarray(small.T @ left) / s                    # (b, r) orthonormal
    users, items = (right, left) if transpose else (left, right)
    item_factors = items * s                                  # (n_items, r) = V S
    flip = np.sign(item_factors[np.argmax(np.abs(item_factors), axis=0),
                                np.arange(item_factors.shape[1])])
    flip[flip == 0] = 1.0
    return (users * flip).astype(np.float32), (item_factors * flip).astype(np.float32)


@dataclass(frozen=True)
class RidgePath:
    """Ridge regression ``Y ≈ (X - x̄) W + ȳ`` for many penalties at the cost of one SVD of
    the centred inputs: ``W(λ) = B diag(s / (s² + λ)) Aᵀ (Y - ȳ)`` for ``X - x̄ = A diag(s) Bᵀ``.
    The intercept is not penalised."""

    x_mean: np.ndarray   # (d,)
    y_mean: np.ndarray   # (r,)
    basis: np.ndarray    # (d, q)  B
    s: np.ndarray        # (q,)
    projected: np.ndarray  # (q, r)  Aᵀ (Y - ȳ)

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray) -> "RidgePath":
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
        a, s, bt = np.linalg.svd(x - x_mean, full_matrices=False)  # (n, q), (q,), (q, d)
        return cls(x_mean, y_mean, bt.T, s, a.T @ (y - y_mean))

    def weights(self, penalty: float) -> np.ndarray:
        """``(d, r)`` coefficients for ridge penalty ``penalty`` (λ ≥ 0)."""
        shrink = self.s / (self.s ** 2 + penalty)              # (q,)
        return self.basis @ (shrink[:, None] * self.projected)

    def predict(self, x: np.ndarray, penalty: float) -> np.ndarray:
        """``(n, r)`` predicted targets for inputs ``x`` (n, d)."""
        return ((np.asarray(x, dtype=np.float64) - self.x_mean) @ self.weights(penalty)
                + self.y_mean).astype(np.float32)


def mean_ndcg(scores: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Mean binary NDCG@``k`` over rows of ``scores`` (``(n_users, n_items)``, ``-inf`` for
    excluded items) with 0/1 ``relevant`` of the same shape; ties broken by column order (as
    FusionRec's evaluation does)."""
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]               # (n, k)
    gains = np.take_along_axis(relevant, order, axis=1)
    gains = gains * np.isfinite(np.take_along_axis(scores, order, axis=1))
    discounts = 1.0 / np.log2(np.arange(2, k + 2))                           # (k,)
    ideal = np.cumsum(discounts)[np.minimum(relevant.sum(axis=1), k).astype(int) - 1]
    return float(np.mean((gains * discounts).sum(axis=1) / ideal))
