"""The fusion model's :class:`~fusionrec.models.servable.VectorScorer`: its fitted scorer
(fusion layers + heads) for inference only, numpy in, numpy out, under
``torch.inference_mode`` (no autograd on the request path)."""

from __future__ import annotations

import numpy as np


class FusedSpace:
    """Inference-only view of a fitted :class:`FusionScorer` (``sources`` in stacking order)."""

    def __init__(self, scorer, sources: tuple[str, ...]) -> None:
        import torch

        self._torch = torch
        self.scorer = scorer.eval()
        self.sources = tuple(sources)
        retrieval = scorer.retrieval
        self.has_ctr = scorer.ctr is not None
        self.has_retrieval = retrieval is not None
        self.item_bias = (retrieval.item_bias.detach().numpy().astype(np.float32)
                          if retrieval is not None else None)

    def fuse(self, side: str, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``x (B, S, d)``, ``mask (B, S)`` -> fused ``(B, D)`` float32."""
        torch = self._torch
        with torch.inference_mode():
            out = self.scorer.fuse(side, torch.from_numpy(np.ascontiguousarray(x, np.float32)),
                                   torch.from_numpy(np.ascontiguousarray(mask, bool)))
        return out.numpy()

    def weights(self, side: str, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``(B, S)`` fusion weight of each source (what the gate gives it)."""
        torch = self._torch
        fusion = self.scorer.user_fusion if side == "user" else self.scorer.item_fusion
        with torch.inference_mode():
            out = fusion.weights(torch.from_numpy(np.ascontiguousarray(x, np.float32)),
                                 torch.from_numpy(np.ascontiguousarray(mask, bool)))
        return out.numpy()

    def pair_scores(self, user: np.ndarray, items: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """The model's score of one fused ``user (D,)`` against fused ``items (N, D)`` with
        retrieval biases ``bias (N,)``: the CTR logit when the model has a CTR head, else the
        retrieval score ``u . i + b``."""
        if not self.has_ctr:
            return items @ user + bias
        torch = self._torch
        with torch.inference_mode():
            out = self.scorer.ctr(torch.from_numpy(user[None, :]), torch.from_numpy(items))
        return out.numpy()


    def row_scores(self, users: np.ndarray, items: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """Row-wise scores of fused ``users (N, D)`` with ``items (N, D)`` and ``bias (N,)``."""
        if not self.has_ctr:
            return (users * items).sum(1) + bias
        torch = self._torch
        with torch.inference_mode():
            out = self.scorer.ctr(torch.from_numpy(np.ascontiguousarray(users, np.float32)),
                                  torch.from_numpy(np.ascontiguousarray(items, np.float32)))
        return out.numpy()
