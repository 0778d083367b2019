"""Validation helpers shared by the models' typed parameter dataclasses.

Each model declares a frozen dataclass of its ``model.params`` (registered in
:data:`fusionrec.models.registry.PARAMS`); its ``__post_init__`` checks values with these
helpers, so a bad value fails the same way whether it comes from YAML or from Python.
"""

from __future__ import annotations

from typing import Any

from fusionrec.errors import FusionRecError, did_you_mean

#: ``loss`` values of the pairwise baselines: BPR on top-K splits and BCE on CTR ones for auto.
PAIR_LOSSES = ("auto", "bpr", "bce")


class ParamsError(FusionRecError, ValueError):
    """A model parameter out of range; the message names the model and the key."""


class MissingSourceError(FusionRecError, ValueError):
    """The model (or its params) needs a data source the dataset does not provide."""


def at_least(model: str, key: str, value: Any, low: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
        raise ParamsError(f"{model} params: {key} must be >= {low}, got {value!r}")


def one_of(model: str, key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ParamsError(f"{model} params: {key} must be one of {allowed}, got {value!r}"
                          f"{did_you_mean(str(value), allowed)}")


def names_among(model: str, key: str, values: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    """Every name of ``values`` is one of ``allowed``; the first that is not is named, with the
    closest known name (``socail`` -> ``social``)."""
    for value in values:
        if value not in allowed:
            raise ParamsError(f"{model} params: {key}: unknown name {value!r}"
                              f"{did_you_mean(str(value), allowed)} (known: {', '.join(allowed)})")
