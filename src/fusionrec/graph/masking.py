"""Sparse matrices whose edges can be switched off and re-normalised in O(nnz) vector ops.

Training that hides the edges of the pairs in a batch needs a fresh normalised adjacency per
step; rebuilding one from COO (sort, coalesce, transpose) costs far more than the propagation
itself. A :class:`MaskableMatrix` fixes the sparsity structure (CSR plus its transpose) once;
:meth:`MaskableMatrix.operator` then only recomputes the values: dropped entries become
explicit zeros and the degrees are recounted over the kept ones, so the result equals the
matrix built from the kept edges alone.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from fusionrec.graph.adjacency import Norm, SparseOperator, index_tensor


def _csr_pointers(rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    counts = torch.bincount(rows, minlength=n_rows)
    return torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts, 0)])


def _safe_inverse(x: torch.Tensor, power: float) -> torch.Tensor:
    return torch.where(x > 0, x.clamp(min=1e-12).pow(-power), torch.zeros_like(x))


@dataclass(frozen=True)
class MaskableMatrix:
    """A binary ``shape`` matrix in CSR order; entry ``e`` comes from edge ``edge[e]`` (``-1``:
    an entry that is always kept, e.g. a friendship in a user–item training graph)."""

    shape: tuple[int, int]
    row: torch.Tensor  # (nnz,) long, sorted row-major with col
    col: torch.Tensor  # (nnz,) long
    crow: torch.Tensor  # (n_rows + 1,) long
    edge: torch.Tensor  # (nnz,) long
    t_perm: torch.Tensor  # (nnz,) entry order of the transpose's CSR
    t_crow: torch.Tensor  # (n_cols + 1,) long
    norm: Norm = "sym"

    @classmethod
    def build(cls, rows, cols, edge, shape: tuple[int, int], norm: Norm = "sym"
              ) -> "MaskableMatrix":
        """Entries at ``(rows, cols)``; a repeated position keeps its first entry's edge id."""
        rows, cols, edge = index_tensor(rows), index_tensor(cols), index_tensor(edge)
        n_rows, n_cols = shape
        if len(rows) and (rows.min() < 0 or cols.min() < 0 or rows.max() >= n_rows
                          or cols.max() >= n_cols):
            raise ValueError(f"edge index out of range for a {shape} matrix")
        keys = rows * n_cols + cols
        order = torch.argsort(keys, stable=True)
        keys = keys[order]
        first = torch.ones(len(keys), dtype=torch.bool)
        first[1:] = keys[1:] != keys[:-1]
        pick = order[first]
        rows, cols, edge = rows[pick], cols[pick], edge[pick]
        t_perm = torch.argsort(cols * n_rows + rows, stable=True)
        return cls((n_rows, n_cols), rows, cols, _csr_pointers(rows, n_rows), edge, t_perm,
                   _csr_pointers(cols[t_perm], n_cols), norm)

    def values(self, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised values ``(nnz,)``; ``keep (n_edges,) bool`` switches edges off."""
        device = self.row.device
        weight = torch.ones(len(self.row), device=device)
        if keep is not None:
            kept = keep[self.edge.clamp(min=0)] | (self.edge < 0)
            weight = kept.float()
        if self.norm == "none":
            return weight
        row_sum = torch.zeros(self.shape[0], device=device).index_add_(0, self.row, weight)
        if self.norm == "row":
            return weight * _safe_inverse(row_sum, 1.0)[self.row]
        if self.norm == "sym":
            col_sum = torch.zeros(self.shape[1], device=device).index_add_(0, self.col, weight)
            return (weight * _safe_inverse(row_sum, 0.5)[self.row]
                    * _safe_inverse(col_sum, 0.5)[self.col])
        raise ValueError(f"unknown normalisation {self.norm!r}; expected sym, row or none")

    def operator(self, keep: torch.Tensor | None = None) -> SparseOperator:
        values = self.values(keep)
        with warnings.catch_warnings():  # CSR is flagged "beta" but is the fast CPU path
            warnings.simplefilter("ignore", UserWarning)
            matrix = torch.sparse_csr_tensor(self.crow, self.col, values, self.shape,
                                             check_invariants=False)
            transpose = torch.sparse_csr_tensor(self.t_crow, self.row[self.t_perm],
                                                values[self.t_perm], self.shape[::-1],
                                                check_invariants=False)
        return SparseOperator(matrix, transpose)
