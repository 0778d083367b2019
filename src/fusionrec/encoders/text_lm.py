"""A text encoder whose language model trains: texts -> pooled vectors, with autograd.

:class:`TrainableTextLM` is the Hugging Face encoder of :mod:`fusionrec.encoders.hf` (same
tokenisation, truncation, pooling and L2 normalisation, so its vectors are drop-in replacements
for cached ones) with an :class:`~fusionrec.encoders.trainable.LMTuning` mode applied. It always
runs in fp32, on the device of the model that owns it (``trainer.device``): cached rows
refreshed by :meth:`encode` then equal what a training step computes for the same text.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from fusionrec.encoders.config import EncoderConfig
from fusionrec.encoders.trainable import apply_tuning, attach_tuned, check_base_weights, save_tuned
from fusionrec.encoders.tuning import PEFT_MODES, LMTuning

#: Files of a saved tuned LM next to what :func:`save_tuned` writes.
INFO_FILE = "text_lm.json"
#: Texts per forward pass when gradients flow (activations of every chunk are kept for the
#: backward pass, so larger chunks only add padding).
GRAD_CHUNK = 16


def _hf_encoder(config: EncoderConfig):
    from fusionrec.encoders.base import EncoderError
    from fusionrec.encoders.factory import build_encoder
    from fusionrec.encoders.hf import HFEncoder

    # Built on the CPU in fp32 (see module doc); the Trainer moves it to trainer.device with
    # the model that owns it, and ``pooled`` feeds it on whatever device it is on.
    encoder = build_encoder(dataclasses.replace(config, device="cpu", precision="fp32",
                                                compile=False))
    if not isinstance(encoder, HFEncoder):
        raise EncoderError(f"encoder.model {config.model!r} has no weights to fine-tune; "
                           "name a Hugging Face model (e.g. all-MiniLM-L6-v2)")
    encoder.load()
    # BERT's pooler (dense + tanh over [CLS]) feeds nothing the pooled vector uses; dropping it
    # saves its compute and keeps unused (gradient-less) weights out of training.
    if getattr(encoder.model, "pooler", None) is not None:
        encoder.model.pooler = None
    return encoder


class TrainableTextLM(nn.Module):
    """``forward(ids)``: token-id lists -> ``(n, d)`` pooled vectors, gradients flowing into the
    LM's trainable weights (see ``tuning``). ``encode`` does the same without gradients, in
    eval mode and length-sorted batches."""

    def __init__(self, config: EncoderConfig, tuning: LMTuning, label: str = "LM",
                 apply: bool = True) -> None:
        super().__init__()
        self.encoder = _hf_encoder(config)  # tokenizer, pooling, padding (not a Module)
        self.tuning = tuning
        self.config = config
        base = self.encoder.model
        self.model = apply_tuning(base, tuning, label=label) if apply else base

    @property
    def dim(self) -> int:
        return self.encoder.dim

    @property
    def identity(self) -> dict[str, Any]:
        """Base model (id + weights hash), pooling, max length, and the tuning mode."""
        return {**self.encoder.identity, "mode": self.tuning.mode}

    def tokenise(self, texts: Sequence[str]) -> list[list[int]]:
        return self.encoder.tokenise(texts)

    def forward(self, ids: list[list[int]], chunk: int = GRAD_CHUNK) -> torch.Tensor:
        """``(len(ids), d)``: the texts run length-sorted in chunks of ``chunk``, so each chunk
        pads to a similar length (random texts padded together waste ~2x the compute)."""
        order = np.argsort(-np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)),
                           kind="stable")
        parts = [self.encoder.pooled(self.model, [ids[i] for i in order[s:s + chunk]])
                 for s in range(0, len(order), chunk)]  # each (<= chunk, d)
        vectors = torch.cat(parts)[torch.from_numpy(np.argsort(order))]  # back in input order
        return nn.functional.normalize(vectors, dim=1) if self.config.normalize else vectors

    @torch.no_grad()
    def encode(self, ids: list[list[int]]) -> torch.Tensor:
        """``(len(ids), d)`` vectors in eval mode (dropout off), ``encoder.batch_size`` texts
        at a time."""
        if not ids:
            return torch.zeros(0, self.dim)
        was_training = self.training
        self.eval()
        try:
            return self(ids, chunk=self.config.batch_size)
        finally:
            self.train(was_training)

    def save(self, directory: Path) -> None:
        """What trained (see :func:`save_tuned`) plus the identity the weights belong to."""
        import json

        save_tuned(self.model, self.tuning.mode, directory)
        info = {"identity": self.identity, "tuning": dataclasses.asdict(self.tuning),
                "encoder": self.config.to_dict()}
        (directory / INFO_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> "TrainableTextLM":
        """A saved tuned LM on top of its base model, resolved offline; the base weights must
        be the ones it was trained on."""
        import json

        info = json.loads((directory / INFO_FILE).read_text(encoding="utf-8"))
        lm = cls(EncoderConfig.from_dict(info["encoder"]), LMTuning(**info["tuning"]),
                 apply=False)
        check_base_weights(directory, lm.config.model, lm.encoder.identity["weights_hash"],
                           info["identity"]["weights_hash"])
        lm.model = attach_tuned(lm.model, lm.tuning.mode, directory)
        if lm.tuning.mode not in PEFT_MODES:  # mark what trained, so saving it again is whole
            apply_tuning(lm.model, lm.tuning)
        return lm.eval()
