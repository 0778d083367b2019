"""A fast, model-free encoder for unit tests: signed feature hashing of words and word pairs.

Similar texts (shared words) get similar vectors, which is all a test of the plumbing needs.
Never use it for real recommendations: it knows no semantics.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Sequence

import numpy as np

from fusionrec.encoders.base import l2_normalise

_WORDS = re.compile(r"\w+")


class HashingEncoder:
    """``hashing`` or ``hashing:DIM`` in an :class:`EncoderConfig`."""

    def __init__(self, dim: int = 64, normalize: bool = True) -> None:
        if dim < 2:
            raise ValueError(f"hashing dim must be >= 2, got {dim}")
        self._dim = dim
        self.normalize = normalize

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def identity(self) -> dict[str, Any]:
        return {"model": f"hashing:{self._dim}", "weights_hash": "none", "pooling": "sum",
                "max_length": 0, "normalize": self.normalize}

    @property
    def runtime(self) -> dict[str, Any]:
        return {"precision": "fp32", "reason": "hashing encoder (no model)", "device": "cpu",
                "agreement_vs_fp32": None}

    def _features(self, text: str) -> list[str]:
        words = _WORDS.findall(text.lower())
        return words + [f"{a} {b}" for a, b in zip(words, words[1:])]

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in self._features(text):
                # blake2b, not hash(): Python's string hash is salted per process.
                code = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(),
                                      "little")
                out[row, code % self._dim] += 1.0 if (code >> 63) & 1 else -1.0
        return l2_normalise(out) if self.normalize else out
