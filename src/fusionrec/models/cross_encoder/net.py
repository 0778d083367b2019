"""The scoring module: LM logit of the fused prompt plus a linear head over side features.

``logit = lm(prompt) + w . (side - mean) / std + b``. ``w`` starts at the prior (weight 1 on
history positivity, 0 elsewhere) and the LM's head at zero, so before any training the model
*is* the history-positivity rule; stage 1 of training (``train.fit_side_head``) replaces ``w``
only when a fitted head beats the rule on validation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


class CrossEncoderNet(nn.Module):
    def __init__(self, lm: nn.Module | None, n_side: int, prior: np.ndarray | None = None) -> None:
        super().__init__()
        self.lm = lm
        self.n_side = n_side
        self.register_buffer("side_mean", torch.zeros(n_side))
        self.register_buffer("side_std", torch.ones(n_side))
        self.register_buffer("prior", torch.as_tensor(
            prior if prior is not None else np.zeros(n_side), dtype=torch.float32))
        self.side = nn.Linear(n_side, 1) if n_side else None
        #: False while the LM's head is provably still at its zero start (the hybrid's best
        #: epoch was 0): its logit is then 0 for every prompt, so scoring skips the LM.
        self.lm_active = lm is not None
        if self.side is not None:
            with torch.no_grad():
                self.side.weight.copy_(self.prior[None, :])
                self.side.bias.zero_()

    def set_side_scale(self, side: np.ndarray) -> None:
        """Standardise side features with the mean/std of ``side`` (unlabelled rows)."""
        if not self.n_side or len(side) == 0:
            return
        std = side.std(axis=0)
        self.side_mean.copy_(torch.as_tensor(side.mean(axis=0), dtype=torch.float32))
        self.side_std.copy_(torch.as_tensor(np.where(std > 1e-6, std, 1.0), dtype=torch.float32))

    def forward(self, batch: dict) -> torch.Tensor:
        """``batch``: tokenizer tensors (``input_ids``, ``attention_mask``, ...) and/or
        ``side`` ``(n, n_side)``. Returns logits ``(n,)``."""
        logit = None
        if self.lm is not None and self.lm_active:
            tokens = {k: v for k, v in batch.items() if k != "side"}
            logit = self.lm(**tokens).logits[:, 0].float()
        if self.side is not None:
            z = (batch["side"] - self.side_mean) / self.side_std       # (n, n_side)
            side = self.side(z)[:, 0]
            logit = side if logit is None else logit + side
        if logit is None:  # an inactive LM and no side head
            logit = torch.zeros(len(next(iter(batch.values()))), device=self.prior.device)
        return logit


@dataclass
class EncodedRows:
    """Rows ready for the net: token ids (unpadded), side features, labels."""

    tokens: list[dict[str, list[int]]] | None
    side: np.ndarray | None
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.tokens) if self.tokens is not None else len(self.side)

    def lengths(self) -> np.ndarray:
        if self.tokens is None:
            return np.zeros(len(self), dtype=np.int64)
        return np.array([len(t["input_ids"]) for t in self.tokens])

    def take(self, rows: np.ndarray) -> "EncodedRows":
        return EncodedRows(None if self.tokens is None else [self.tokens[r] for r in rows],
                           None if self.side is None else self.side[rows],
                           None if self.labels is None else self.labels[rows])


def encode_rows(tokenizer, prompts: list[tuple[str, str]] | None, side: np.ndarray | None,
                max_length: int, labels: np.ndarray | None = None) -> EncodedRows:
    tokens = None
    if tokenizer is not None and prompts is not None:
        first, second = [a for a, _ in prompts], [b for _, b in prompts]
        encoded = tokenizer(first, second, truncation="longest_first", max_length=max_length)
        keys = [k for k in encoded.keys() if k in ("input_ids", "attention_mask",
                                                   "token_type_ids")]
        tokens = [{k: encoded[k][r] for k in keys} for r in range(len(prompts))]
    return EncodedRows(tokens, side, labels)


def collate(rows: EncodedRows, pad_id: int, padding_side: str = "right") -> dict:
    """Pad one batch to its longest row."""
    batch: dict = {}
    if rows.tokens is not None:
        width = max(len(t["input_ids"]) for t in rows.tokens)
        for key in rows.tokens[0]:
            fill = pad_id if key == "input_ids" else 0
            padded = []
            for t in rows.tokens:
                pad = [fill] * (width - len(t[key]))
                padded.append(pad + t[key] if padding_side == "left" else t[key] + pad)
            batch[key] = torch.tensor(padded, dtype=torch.long)
    if rows.side is not None:
        batch["side"] = torch.as_tensor(rows.side, dtype=torch.float32)
    return batch
