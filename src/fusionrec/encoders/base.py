"""The text-encoder protocol every encoder implements, and its one error type."""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from fusionrec.errors import FusionRecError


class EncoderError(FusionRecError, RuntimeError):
    """A problem the user can fix (model not found offline, unsupported pooling): one line."""


@runtime_checkable
class TextEncoder(Protocol):
    """Maps texts to fixed-size float32 vectors.

    ``identity`` holds everything that determines the vectors of a given text (model id,
    weights hash, pooling, max length, normalisation): it is the embedding-cache key.
    ``runtime`` describes how the last :meth:`encode` ran (precision, agreement with fp32,
    device); it is recorded in cache metadata but does not key it.
    """

    @property
    def dim(self) -> int: ...

    @property
    def identity(self) -> dict[str, Any]: ...

    @property
    def runtime(self) -> dict[str, Any]: ...

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """``(len(texts), dim)`` float32, row ``i`` encoding ``texts[i]``."""
        ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
