"""Normalised sparse adjacencies built with plain torch sparse ops.

Every builder takes dense int64 index arrays (numpy or torch) and returns a :class:`SparseOperator`,
an immutable sparse matrix whose product with a dense tensor is differentiable in the dense
argument. Node layouts:

* bipartite / social+bipartite graphs put users first: node ``u`` is user ``u``, node
  ``n_users + i`` is item ``i``;
* the user–user social graph has one node per user.

Normalisations: ``"sym"`` is LightGCN's ``D^-1/2 A D^-1/2``; ``"row"`` is ``D^-1 A`` (a mean over
neighbours). Rows with no edges stay all-zero, so isolated nodes simply receive nothing.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

Norm = Literal["sym", "row", "none"]


class _SpMM(torch.autograd.Function):
    """``matrix @ dense`` whose backward uses a pre-built transpose: torch's generic sparse
    backward re-coalesces the transpose on every call, which is ~4x slower on CPU."""

    @staticmethod
    def forward(ctx, dense: torch.Tensor, matrix: torch.Tensor, transpose: torch.Tensor):
        ctx.transpose = transpose
        return matrix @ dense

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return ctx.transpose @ grad, None, None


@dataclass(frozen=True)
class SparseOperator:
    """A fixed sparse ``(n_rows, n_cols)`` matrix kept in CSR form together with its transpose."""

    matrix: torch.Tensor  # sparse CSR (n_rows, n_cols)
    transpose: torch.Tensor  # sparse CSR (n_cols, n_rows)

    @classmethod
    def from_coo(cls, coo: torch.Tensor) -> "SparseOperator":
        coo = coo.coalesce()
        with warnings.catch_warnings():  # CSR is flagged "beta" but is the fast CPU path
            warnings.simplefilter("ignore", UserWarning)
            return cls(coo.to_sparse_csr(), coo.t().coalesce().to_sparse_csr())

    @classmethod
    def from_scipy(cls, matrix) -> "SparseOperator":
        """From any ``scipy.sparse`` matrix (values cast to float32)."""
        coo = matrix.tocoo()
        indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
        values = torch.from_numpy(coo.data.astype(np.float32))
        return cls.from_coo(_coo(indices, values, coo.shape))

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.matrix.shape)  # type: ignore[return-value]

    def __matmul__(self, dense: torch.Tensor) -> torch.Tensor:
        """``(n_rows, n_cols) @ (n_cols, d) -> (n_rows, d)``, in the matrix's float32 even
        under a bf16 autocast (the sparse CPU kernels have no bfloat16 form)."""
        with torch.autocast(dense.device.type, enabled=False):
            dense = dense.to(self.matrix.dtype)
            if dense.requires_grad:
                return _SpMM.apply(dense, self.matrix, self.transpose)
            return self.matrix @ dense

    def to_dense(self) -> torch.Tensor:
        return self.matrix.to_dense()

    def coo(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(indices (2, nnz), values (nnz,))`` in row-major order."""
        coo = self.matrix.to_sparse_coo().coalesce()
        return coo.indices(), coo.values()

    def row_degree(self) -> torch.Tensor:
        """Number of stored entries per row, ``(n_rows,)``."""
        return torch.diff(self.matrix.crow_indices())


def index_tensor(values) -> torch.Tensor:
    """``int64`` tensor of ``values`` (numpy arrays, lists or tensors)."""
    if isinstance(values, torch.Tensor):
        return values.long()
    return torch.from_numpy(np.array(values, dtype=np.int64))  # a copy: inputs may be read-only


def _coo(indices: torch.Tensor, values: torch.Tensor, shape) -> torch.Tensor:
    # Indices are range-checked by the builders; torch's own check is opt-in and slow.
    return torch.sparse_coo_tensor(indices, values, shape, check_invariants=False).coalesce()


def sparse_from_edges(rows, cols, shape: tuple[int, int], values=None) -> torch.Tensor:
    """Coalesced COO matrix with ones (or ``values``) at ``(rows, cols)``; duplicates are summed."""
    rows, cols = index_tensor(rows), index_tensor(cols)
    if rows.shape != cols.shape:
        raise ValueError(f"rows and cols differ in length: {rows.shape} vs {cols.shape}")
    if len(rows) and (rows.min() < 0 or cols.min() < 0 or rows.max() >= shape[0]
                      or cols.max() >= shape[1]):
        raise ValueError(f"edge index out of range for a {shape} matrix")
    if values is None:
        weight = torch.ones(len(rows), dtype=torch.float32)
    else:
        weight = torch.from_numpy(np.array(values, dtype=np.float32))
    return _coo(torch.stack([rows, cols]), weight, shape)


def normalize(coo: torch.Tensor, mode: Norm = "sym") -> torch.Tensor:
    """Degree-normalise a coalesced COO matrix (degrees are weighted row/column sums)."""
    if mode == "none":
        return coo
    indices, values = coo.indices(), coo.values()
    row_sum = torch.zeros(coo.shape[0]).index_add_(0, indices[0], values)
    if mode == "row":
        scale = 1.0 / row_sum[indices[0]]
    elif mode == "sym":
        col_sum = torch.zeros(coo.shape[1]).index_add_(0, indices[1], values)
        scale = row_sum[indices[0]].rsqrt() * col_sum[indices[1]].rsqrt()
    else:
        raise ValueError(f"unknown normalisation {mode!r}; expected sym, row or none")
    return _coo(indices, values * scale, coo.shape)


def interaction_matrix(users, items, n_users: int, n_items: int, norm: Norm = "row",
                       weights=None, binary: bool = True) -> SparseOperator:
    """``(n_users, n_items)`` user–item matrix; ``"row"`` makes ``R @ X`` the mean over a user's
    items. ``binary`` collapses repeated events to one edge (the usual implicit-feedback view)."""
    coo = sparse_from_edges(users, items, (n_users, n_items), weights)
    if binary:
        coo = _binary(coo)
    return SparseOperator.from_coo(normalize(coo, norm))


def _binary(coo: torch.Tensor) -> torch.Tensor:
    return _coo(coo.indices(), torch.ones_like(coo.values()), coo.shape)


def _symmetric(rows: torch.Tensor, cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([rows, cols]), torch.cat([cols, rows])


def bipartite_adjacency(users, items, n_users: int, n_items: int,
                        norm: Norm = "sym") -> SparseOperator:
    """LightGCN's ``(n_users + n_items)`` square adjacency ``[[0, R], [R^T, 0]]``, normalised."""
    rows, cols = _symmetric(index_tensor(users), index_tensor(items) + n_users)
    n = n_users + n_items
    coo = sparse_from_edges(rows, cols, (n, n))
    return SparseOperator.from_coo(normalize(_binary(coo), norm))


def social_adjacency(source, target, n_users: int, directed: bool = False,
                     self_loops: bool = False, norm: Norm = "sym") -> SparseOperator:
    """``(n_users, n_users)`` user–user matrix; undirected edges are mirrored, duplicates merged."""
    rows, cols = index_tensor(source), index_tensor(target)
    if not directed:
        rows, cols = _symmetric(rows, cols)
    if self_loops:
        loop = torch.arange(n_users)
        rows, cols = torch.cat([rows, loop]), torch.cat([cols, loop])
    coo = sparse_from_edges(rows, cols, (n_users, n_users))
    return SparseOperator.from_coo(normalize(_binary(coo), norm))


def social_bipartite_adjacency(users, items, source, target, n_users: int, n_items: int,
                               directed: bool = False, norm: Norm = "sym") -> SparseOperator:
    """One square graph over users then items holding both user–item and user–user edges
    (``[[S, R], [R^T, 0]]``), so propagation mixes friends' and items' signals in each layer."""
    u, i = index_tensor(users), index_tensor(items) + n_users
    s, t = index_tensor(source), index_tensor(target)
    if not directed:
        s, t = _symmetric(s, t)
    rows = torch.cat([u, i, s])
    cols = torch.cat([i, u, t])
    n = n_users + n_items
    coo = sparse_from_edges(rows, cols, (n, n))
    return SparseOperator.from_coo(normalize(_binary(coo), norm))
