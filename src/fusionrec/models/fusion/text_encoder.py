"""``item_text`` source: LM embeddings mapped into the model space by a trainable adapter.

The LM embeddings are a cached table. With ``lm_mode: frozen`` that is all; with a fine-tuned
LM (:class:`LiveLM`) each training step re-encodes, with gradients, only the texts of the rows
the batch scores and reads every other row from the table, which :meth:`TextEncoder.refresh`
re-encodes once the LM has changed (before validation and scoring).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fusionrec.models.fusion.sources import (BatchRows, SourceVectors, TrainingGraph,
                                             register_masks)


def _float_tensor(values) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values.detach().float().clone()
    return torch.from_numpy(np.array(values, dtype=np.float32))  # a copy: inputs may be read-only


@dataclass(frozen=True)
class LiveLM:
    """A fine-tuned LM (``TrainableTextLM``) and the token ids of every item's (and, when the
    user's own text is used, every user's) text, in index order."""

    lm: nn.Module
    item_ids: list
    user_ids: list | None = None
    per_step: int = 0  # at most this many texts per side re-encoded per step (0: all)


class TextAdapter(nn.Module):
    """``(n, d_lm) -> (n, d)``: LayerNorm then a two-layer MLP (or one linear map). With a frozen
    LM only this projection learns, so the cost is independent of the LM size."""

    def __init__(self, in_dim: int, dim: int, hidden: int | None = None) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        if hidden:
            self.project = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(),
                                         nn.Linear(hidden, dim))
        else:
            self.project = nn.Linear(in_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.norm(x))


class TextEncoder(nn.Module):
    """Item vector = adapter(item LM embedding). User vector = the mean of the user's training
    items' text vectors (``with_profile``), plus adapter(user LM embedding) when ``user_text``
    (a textualised user) is given. Both sides share the adapter, so they live in one space.
    Rows whose LM vector is all zero (no text) are masked out."""

    batch_rows = True  # FusionModel hands forward the rows a training batch scores

    def __init__(self, item_text, user_text, graph: TrainingGraph, dim: int,
                 hidden: int | None = 128, with_profile: bool = True,
                 live: LiveLM | None = None) -> None:
        super().__init__()
        item = _float_tensor(item_text)  # (n_items, d_lm)
        if item.shape[0] != graph.n_items:
            raise ValueError(f"item text features have {item.shape[0]} rows for "
                             f"{graph.n_items} items")
        # A fine-tuned LM's table is state (refreshed, checkpointed, restored with the best
        # weights); a frozen LM's is a fixed input rebuilt from the cache.
        self.register_buffer("item_text", item, persistent=live is not None)
        user = None if user_text is None else _float_tensor(user_text)
        if user is not None and user.shape != (graph.n_users, item.shape[1]):
            raise ValueError(f"user text features must be ({graph.n_users}, {item.shape[1]}), "
                             f"got {tuple(user.shape)}")
        self.register_buffer("user_text", user, persistent=live is not None)
        if user is None and not with_profile:
            raise ValueError("TextEncoder needs user_text or with_profile")
        self.with_profile = with_profile
        self.adapter = TextAdapter(item.shape[1], dim, hidden)
        item_mask = item.abs().sum(1) > 0
        user_has_text = (user.abs().sum(1) > 0 if user is not None
                         else torch.zeros(graph.n_users, dtype=torch.bool))
        user_mask = user_has_text.clone()
        if with_profile:
            user_mask |= (graph.user_items @ item_mask.float()[:, None]).squeeze(1) > 0
        register_masks(self, user_mask, item_mask)
        self.register_buffer("user_has_text", user_has_text, persistent=False)
        self.lm = None
        if live is not None:
            self._check_live(live, item, user)
            self.lm, self.live = live.lm, live
            # True once a training step moved the LM away from the table (persistent, so a
            # restored checkpoint knows whether its table is current)
            self.register_buffer("stale", torch.zeros((), dtype=torch.bool))

    @staticmethod
    def _check_live(live: LiveLM, item: torch.Tensor, user: torch.Tensor | None) -> None:
        if live.lm.dim != item.shape[1] or len(live.item_ids) != item.shape[0]:
            raise ValueError(f"the fine-tuned LM gives {live.lm.dim}-d vectors for "
                             f"{len(live.item_ids)} item texts, but the item text features are "
                             f"{tuple(item.shape)}")
        if (user is None) != (live.user_ids is None):
            raise ValueError("the fine-tuned LM needs user texts exactly when user text "
                             "features are used")

    def forward(self, graph: TrainingGraph, rows: BatchRows | None = None) -> SourceVectors:
        item_lm, user_lm = self.item_text, self.user_text  # (n_items | n_users, d_lm)
        if self.lm is not None and self.training and rows is not None:
            item_lm = self._live(item_lm, self.live.item_ids, rows.items, self.item_mask)
            if user_lm is not None:
                user_lm = self._live(user_lm, self.live.user_ids, rows.users, self.user_has_text)
            self.stale.fill_(True)
        item = self.adapter(item_lm) * self.item_mask[:, None]  # (n_items, d)
        user = graph.user_items @ item if self.with_profile else 0.0  # (n_users, d)
        if user_lm is not None:
            user = user + self.adapter(user_lm)
        return SourceVectors(user, item)

    def _live(self, table: torch.Tensor, ids: list, wanted: torch.Tensor,
              has_text: torch.Tensor) -> torch.Tensor:
        """``table`` with the rows in ``wanted`` (those with text, at most ``per_step`` of
        them, drawn at random) re-encoded by the LM, with gradients."""
        rows = torch.unique(wanted)
        rows = rows[has_text[rows]]
        cap = self.live.per_step
        if cap and len(rows) > cap:
            rows = rows[torch.randperm(len(rows), device=rows.device)[:cap]]
        if not len(rows):
            return table
        fresh = self.lm([ids[r] for r in rows.tolist()])  # (n_rows, d_lm)
        return table.index_copy(0, rows, fresh.to(table.dtype))

    @torch.no_grad()
    def refresh(self) -> None:
        """Re-encode every row with text through the current LM, if training changed it."""
        if self.lm is None or not bool(self.stale):
            return
        for table, ids, has_text in ((self.item_text, self.live.item_ids, self.item_mask),
                                     (self.user_text, self.live.user_ids, self.user_has_text)):
            if table is not None:
                rows = has_text.nonzero().squeeze(1)
                table.index_copy_(0, rows, self.lm.encode([ids[r] for r in rows.tolist()]))
        self.stale.fill_(False)
