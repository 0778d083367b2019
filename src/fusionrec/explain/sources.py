"""Per-source contribution to one (user, item) score of a fusion model.

The fusion weights say how much each source counts on each side (``concat`` fusion weighs the
available sources equally; ``weighted``/``gated`` learn it); the ablation says what the score
loses when the source is removed from both sides (masked out, as source dropout does in
training), which is what a user can act on: "your friends moved this item up by 0.8".
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from fusionrec.explain.types import SourceContribution


class FusionScoring(Protocol):
    sources: tuple[str, ...]

    def fuse(self, side: str, x: np.ndarray, mask: np.ndarray) -> np.ndarray: ...

    def weights(self, side: str, x: np.ndarray, mask: np.ndarray) -> np.ndarray: ...

    def row_scores(self, users: np.ndarray, items: np.ndarray, bias: np.ndarray) -> np.ndarray:
        ...


def source_contributions(space: FusionScoring, user: tuple[np.ndarray, np.ndarray],
                         item: tuple[np.ndarray, np.ndarray, float]
                         ) -> tuple[float, tuple[SourceContribution, ...]]:
    """``(score, contributions)`` for ``user = (x (S, d), mask (S,))`` and
    ``item = (x (S, d), mask (S,), bias)``; sources absent on both sides are left out."""
    ix, imask, bias = item
    return source_contributions_many(space, user, ix[None], imask[None],
                                     np.array([bias], np.float32))[0]


def source_contributions_many(space: FusionScoring, user: tuple[np.ndarray, np.ndarray],
                              items_x: np.ndarray, items_mask: np.ndarray, bias: np.ndarray
                              ) -> list[tuple[float, tuple[SourceContribution, ...]]]:
    """:func:`source_contributions` for ``N`` items (``items_x (N, S, d)``), in two batched
    fusions: for every item, row 0 keeps every source and row ``1 + s`` drops source ``s``
    from both sides."""
    ux, umask = user
    n_items, n_sources = items_mask.shape
    rows = n_sources + 1
    drop = np.ones((rows, n_sources), dtype=bool)
    drop[np.arange(1, rows), np.arange(n_sources)] = False  # (rows, S)
    u_masks = umask[None] & drop  # (rows, S)
    u = space.fuse("user", np.repeat(ux[None], rows, axis=0), u_masks)  # (rows, D)
    i_masks = (items_mask[:, None, :] & drop[None]).reshape(-1, n_sources)  # (N * rows, S)
    i_x = np.repeat(items_x, rows, axis=0)  # (N * rows, S, d)
    i = space.fuse("item", i_x, i_masks).reshape(n_items, rows, -1)  # (N, rows, D)
    scores = np.stack([space.row_scores(u, i[n], np.repeat(bias[n], rows))
                       for n in range(n_items)]).astype(np.float64)  # (N, rows)
    uw = space.weights("user", ux[None], umask[None])[0]
    iw = space.weights("item", items_x, items_mask)  # (N, S)
    out = []
    for n in range(n_items):
        present = [s for s in range(n_sources) if umask[s] or items_mask[n, s]]
        found = [SourceContribution(space.sources[s], float(uw[s]), float(iw[n, s]),
                                    float(scores[n, s + 1]),
                                    float(scores[n, 0] - scores[n, s + 1])) for s in present]
        out.append((float(scores[n, 0]), tuple(sorted(found, key=lambda c: -abs(c.delta)))))
    return out
