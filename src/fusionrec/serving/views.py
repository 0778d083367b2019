"""The shapes the engine and its updater share: per-user views, the table of new items, and the
refusal error. Their own module so ``updates`` need not import ``engine`` (which builds the
``Updater``): the two no longer import each other."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fusionrec.errors import FusionRecError
from fusionrec.serving.vectors import UserState


class RequestError(FusionRecError, ValueError):
    """A request the engine refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UserView:
    """What reads need about a user whose vector changed since load (or who is new)."""

    state: UserState
    fused: np.ndarray     # (D,)
    query: np.ndarray     # (D + 1,) = [fused, 1] for the MIPS index
    history: np.ndarray   # sorted item indices the user interacted with positively
    excluded: np.ndarray  # sorted items never to recommend (history + dislikes)


@dataclass(frozen=True)
class ItemTable:
    """Per-source and fused vectors of the items created after load (base items live in the
    engine's fixed arrays and the FAISS index). Replaced whole on every change."""

    x: np.ndarray      # (m, S, d)
    mask: np.ndarray   # (m, S)
    fused: np.ndarray  # (m, D)
    bias: np.ndarray   # (m,)

    @classmethod
    def empty(cls, n_sources: int, dim: int, fused_dim: int) -> "ItemTable":
        return cls(np.zeros((0, n_sources, dim), np.float32), np.zeros((0, n_sources), bool),
                   np.zeros((0, fused_dim), np.float32), np.zeros(0, np.float32))
