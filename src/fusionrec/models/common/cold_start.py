"""Whether a model can score a cold-start split's cold entities (see
:mod:`fusionrec.evaluation.cold`). Its own module below training and evaluation because both
ask it: the Trainer before the first epoch, ``evaluate`` before scoring a part.
"""

from __future__ import annotations

import numpy as np

from fusionrec.data.split import ColdStartUnsupported, Split


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
