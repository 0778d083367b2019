"""Fold-in of new events into a served model's per-source user vectors.

The vectors and the scorer come from the model's servable contract
(:mod:`fusionrec.models.servable`).

:class:`FoldIn` moves a user's per-source vectors when they record new items, without
retraining. For every source whose user vector depends on the user's items, a ridge map
``A_s`` is fitted at load over the training users, from the *profile* ``P_s`` (the mean of the
user's items' source-``s`` vectors) to the user's own source-``s`` vector. A user whose history
grows from ``H`` to ``H'`` moves by ``(P_s(H') - P_s(H)) @ A_s``. For the profile sources (text,
KG, item attributes), the user vector *is* the profile, the fit recovers ``A_s = I`` and the
update is exact; for the ID and social sources it is the best linear fold-in the tables allow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


#: Sources whose user vector is the mean of the user's items' vectors (mask: any item has it).
PROFILE_SOURCES = ("item_attributes", "item_text", "kg")
#: Sources whose user vector moves when the user's items change.
FOLDED_SOURCES = ("interactions", "item_attributes", "item_text", "social", "kg")


@dataclass(frozen=True)
class UserState:
    """How the service sees one user: per-source vectors, availability, and item profile."""

    x: np.ndarray        # (S, d) float32
    mask: np.ndarray     # (S,) bool
    profile: np.ndarray  # (S, d) mean of the history's per-source item vectors
    n_items: int         # history size the profile averages over


def profiles(item_x: np.ndarray, indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """``(n_users, S, d)`` mean of each user's items' per-source vectors (CSR histories)."""
    n_users = len(indptr) - 1
    counts = np.diff(indptr)
    rows = np.repeat(np.arange(n_users), counts)
    total = np.zeros((n_users,) + item_x.shape[1:], dtype=np.float64)
    np.add.at(total, rows, item_x[indices])
    return (total / np.maximum(counts, 1)[:, None, None]).astype(np.float32)


class FoldIn:
    """Ridge maps from item profiles to user vectors, one per folded source (see module doc)."""

    def __init__(self, sources: tuple[str, ...], maps: np.ndarray, fit_r2: dict[str, float]):
        self.sources = sources
        self.maps = maps        # (S, d, d); zero for sources that do not fold
        self.fit_r2 = fit_r2    # share of user-vector variance the map explains, per source

    @classmethod
    def fit(cls, sources: tuple[str, ...], user_x: np.ndarray, user_profile: np.ndarray,
            ridge: float = 1e-3) -> "FoldIn":
        n_sources, dim = user_x.shape[1], user_x.shape[2]
        maps = np.zeros((n_sources, dim, dim), dtype=np.float32)
        fit_r2 = {}
        for s, name in enumerate(sources):
            if name not in FOLDED_SOURCES:
                continue
            p = user_profile[:, s].astype(np.float64)
            u = user_x[:, s].astype(np.float64)
            p_c, u_c = p - p.mean(0), u - u.mean(0)
            gram = p_c.T @ p_c
            lam = ridge * max(np.trace(gram) / dim, 1e-12)
            a = np.linalg.solve(gram + lam * np.eye(dim), p_c.T @ u_c)  # (d, d)
            maps[s] = a
            resid = ((u_c - p_c @ a) ** 2).sum()
            fit_r2[name] = float(1 - resid / max((u_c ** 2).sum(), 1e-12))
        return cls(tuple(sources), maps, fit_r2)

    def update(self, state: UserState, added_x: np.ndarray, added_mask: np.ndarray) -> UserState:
        """``state`` after the user's history gains items with per-source vectors
        ``added_x (n, S, d)`` and masks ``added_mask (n, S)``."""
        if not len(added_x):
            return state
        n = state.n_items + len(added_x)
        profile = (state.profile * state.n_items + added_x.sum(0)) / n  # (S, d)
        delta = np.einsum("sd,sde->se", profile - state.profile, self.maps)
        x = (state.x + delta).astype(np.float32)
        mask = state.mask.copy()
        for s, name in enumerate(self.sources):
            if name in PROFILE_SOURCES:
                mask[s] |= bool(added_mask[:, s].any())
        return UserState(x, mask, profile.astype(np.float32), n)
