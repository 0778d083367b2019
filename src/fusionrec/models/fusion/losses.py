"""Training losses, kept outside the model (the model only produces scores)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on logits ``(B,)`` against 0/1 ``labels (B,)``."""
    return F.binary_cross_entropy_with_logits(logits, labels.float())


def bpr_loss(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """``-log sigmoid(s_pos - s_neg)`` averaged; ``positive (B,)``, ``negative (B, n)``."""
    return -F.logsigmoid(positive.unsqueeze(1) - negative).mean()


def sampled_softmax_loss(positive: torch.Tensor, negative: torch.Tensor,
                         temperature: float = 1.0) -> torch.Tensor:
    """Cross-entropy of the positive among itself and its sampled negatives at
    ``temperature``; ``positive (B,)``, ``negative (B, n)``."""
    logits = torch.cat([positive.unsqueeze(1), negative], dim=1) / temperature  # (B, 1 + n)
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long,
                                                   device=logits.device))


def full_softmax_loss(all_items: torch.Tensor, items: torch.Tensor,
                      temperature: float = 1.0) -> torch.Tensor:
    """Cross-entropy of each row's positive ``items (B,)`` among every item's score
    ``all_items (B, n_items)`` at ``temperature``."""
    logits = all_items if temperature == 1.0 else all_items / temperature  # skip a (B, n) copy
    return F.cross_entropy(logits, items)


def retrieval_loss(kind: str, positive: torch.Tensor, negative: torch.Tensor,
                   temperature: float = 1.0) -> torch.Tensor:
    if kind == "bpr":
        return bpr_loss(positive, negative)
    if kind == "softmax":
        return sampled_softmax_loss(positive, negative, temperature)
    raise ValueError(f"unknown retrieval loss {kind!r}; expected bpr or softmax")
