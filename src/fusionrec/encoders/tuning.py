"""What trains in a language model (:class:`LMTuning`), validated without importing torch; the
machinery that applies it lives in :mod:`fusionrec.encoders.trainable`."""

from __future__ import annotations

from dataclasses import dataclass

#: ``frozen``: nothing in the LM trains (a caller's own head may); ``top_k``: the top ``top_k``
#: transformer blocks; ``lora`` / ``prefix``: PEFT adapters only; ``full``: every weight.
LM_MODES = ("frozen", "top_k", "lora", "prefix", "full")
PEFT_MODES = ("lora", "prefix")


def positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class LMTuning:
    """What trains in the LM (see :data:`LM_MODES`) and the PEFT settings."""

    mode: str = "frozen"
    top_k: int = 2
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    prefix_tokens: int = 10

    def __post_init__(self) -> None:
        if self.mode not in LM_MODES:
            raise ValueError(f"LM mode must be one of {LM_MODES}, got {self.mode!r}")
        for key in ("top_k", "lora_r", "lora_alpha", "prefix_tokens"):
            if not positive_int(getattr(self, key)):
                raise ValueError(f"LM {key} must be a positive int, got {getattr(self, key)!r}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"LM lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
