"""Evaluation on cold-start splits: ranking among candidate items, and the rule that a model
which cannot score a cold entity says so instead of producing a number.

A model declares what it can score without any training interaction through
``cold_start`` (a set holding ``"items"`` and/or ``"users"``; absent means neither). Pure ID
models (``bpr-mf``, ``lightgcn``) declare nothing: their vector for a cold item or user is
untrained noise, and a metric computed from it would be a fake number. ``popularity`` can rank
for a cold user (the same list as anyone's) but not among cold items (they all have count 0).
When a part asks a model for an entity of the split's cold kind that has no training
positive and the model does not declare that kind, :func:`check_cold_start` raises
:class:`~fusionrec.data.split.ColdStartUnsupported`; the benchmark records the message as the
run's outcome ("cannot score cold items").
"""

from __future__ import annotations

import numpy as np

from fusionrec.data.split import ColdStartUnsupported, Pairs, Split

_PAIRS_PER_BATCH = 1 << 18  # (user, candidate) rows scored per model.score call


def model_cold_start(model) -> frozenset[str]:
    return frozenset(getattr(model, "cold_start", ()) or ())


def check_cold_start(model, split: Split, part: str) -> None:
    """Raise :class:`ColdStartUnsupported` if ``part`` of a cold-start split needs ``model`` to
    score a cold entity it declares it cannot (see the module docstring)."""
    cold = split.cold
    if cold is None or part == "train" or cold.kind in model_cold_start(model):
        return
    pairs, train = split.part(part).positives(), split.train.positives()
    if cold.kind == "items":
        asked = cold.candidates(part)
        asked = np.unique(pairs.item) if asked is None else asked
        unseen = np.setdiff1d(np.intersect1d(asked, cold.entities), train.item)
    else:
        unseen = np.setdiff1d(np.unique(pairs.user), train.user)
    if unseen.size:
        name = getattr(model, "name", type(model).__name__)
        raise ColdStartUnsupported(
            f"{name} cannot score cold {cold.kind}: {unseen.size} {cold.kind} of the {part} "
            f"part have no training interaction and the model reads nothing else about them")


def candidate_lists(model, users: np.ndarray, exclude: Pairs, candidates: np.ndarray, k: int,
                    n_items: int) -> np.ndarray:
    """``(len(users), k)`` best of ``candidates`` per user by ``model.score``, excluding the
    user's ``exclude`` items (training positives, valid items on test); ``-1`` padded."""
    candidates = np.asarray(candidates, dtype=np.int64)
    excluded = np.unique(exclude.user.astype(np.int64) * n_items + exclude.item)
    step = max(1, _PAIRS_PER_BATCH // max(len(candidates), 1))
    out = np.full((len(users), k), -1, dtype=np.int64)
    for start in range(0, len(users), step):
        batch = users[start:start + step]
        scores = np.asarray(model.score(np.repeat(batch, len(candidates)),
                                        np.tile(candidates, len(batch))), dtype=np.float64)
        if not np.all(np.isfinite(scores)):
            raise ValueError(f"{type(model).__name__}.score returned non-finite values")
        scores = scores.reshape(len(batch), len(candidates))
        scores[np.isin(batch[:, None] * n_items + candidates[None, :], excluded)] = -np.inf
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # ties: lower index first
        best = np.take_along_axis(scores, order, axis=1)
        items = np.where(np.isfinite(best), candidates[order], -1)
        out[start:start + len(batch), :items.shape[1]] = items
    return out
