"""The fusion network: per-source encoders (sparse arch) -> fusion (interaction arch) -> heads.

:class:`FusionModel` owns the encoders, which hold the training graphs; :class:`FusionScorer`
holds everything downstream of the per-source vectors, so a fitted model can be saved as
per-source tables plus the scorer's weights and reloaded without any training data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from fusionrec.devices import map_tensors
from fusionrec.models.fusion.fusion import ColdRowDropout, SourceDropout, make_fusion
from fusionrec.models.fusion.heads import CTRHead, RetrievalHead
from fusionrec.models.fusion.sources import BatchRows, TrainingGraph


@dataclass(frozen=True)
class SourceTables:
    """Per-source vectors of every user and item, with availability masks."""

    user: torch.Tensor  # (n_users, S, d)
    item: torch.Tensor  # (n_items, S, d)
    user_mask: torch.Tensor  # (n_users, S) bool
    item_mask: torch.Tensor  # (n_items, S) bool


def _rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` via index_select, whose backward (index_add) is several times faster
    on CPU than advanced indexing's (index_put with accumulation)."""
    return table.index_select(0, index)


def _is_every_item(pool: torch.Tensor, n_items: int) -> bool:
    """``pool`` is ``arange(n_items)``, the full-softmax pool."""
    return len(pool) == n_items and bool(
        (pool == torch.arange(n_items, device=pool.device)).all())


class FusionScorer(nn.Module):
    """Source dropout + user/item fusion + the CTR and/or retrieval heads."""

    def __init__(self, n_sources: int, dim: int, n_items: int, fusion: str = "concat",
                 source_dropout: float = 0.0, heads: tuple[str, ...] = ("retrieval",),
                 hidden: tuple[int, ...] = (128, 64), mlp_dropout: float = 0.0,
                 cross_source: bool = False, cosine_scale: float = 0.0,
                 negative_pool: torch.Tensor | None = None,
                 item_dropout: tuple[float, ...] | None = None,
                 cold_user_dropout: float = 0.0,
                 cold_user_sources: torch.Tensor | None = None) -> None:
        super().__init__()
        self.cosine_scale = cosine_scale
        # per-source dropout of the item side (default: source_dropout for every source)
        self.item_dropout = None if item_dropout is None else SourceDropout(item_dropout)
        # (n_items,) bool, None: every item. In a full softmax only these items are negatives
        # (the others score -inf): an item without training interactions is no evidence
        # against any user, and under cold-items it is a held-out item to be scored later.
        self.register_buffer("negative_pool", negative_pool, persistent=False)
        # their indices, for the CTR head's one negative per row (found once, not per batch)
        self.register_buffer("negative_items", None if negative_pool is None
                             else negative_pool.nonzero().squeeze(1), persistent=False)
        self.dropout = SourceDropout(source_dropout)
        # (S,) bool: the sources a user without training interactions has (training only)
        self.cold_users = ColdRowDropout(cold_user_dropout, cold_user_sources)
        self.user_fusion = make_fusion(fusion, n_sources, dim)
        self.item_fusion = make_fusion(fusion, n_sources, dim)
        out_dim = self.user_fusion.out_dim
        # u -> u + W u with W zero at the start: a concatenation's dot product sums per-source
        # dot products; W lets a user's source meet any of an item's (say ID against text).
        self.user_mix = nn.Linear(out_dim, out_dim, bias=False) if cross_source else None
        if self.user_mix is not None:
            nn.init.zeros_(self.user_mix.weight)
        self.ctr = CTRHead(out_dim, hidden, mlp_dropout) if "ctr" in heads else None
        self.retrieval = RetrievalHead(n_items) if "retrieval" in heads else None

    def fuse(self, side: str, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x (B, S, d)``, ``mask (B, S)`` -> ``(B, D)``, dropping sources in training."""
        if side == "item":
            fused = self.item_fusion(x, (self.item_dropout or self.dropout)(mask), mask)
            return fused if not self.cosine_scale else F.normalize(fused, dim=-1)
        mask = self.cold_users(mask)  # what this row's user has, shown cold or not
        fused = self.user_fusion(x, self.dropout(mask), mask)
        if self.user_mix is not None:
            fused = fused + self.user_mix(fused)
        if self.cosine_scale:  # u . i = scale * cos(u, i): the scale on one side is enough
            fused = self.cosine_scale * F.normalize(fused, dim=-1)
        return fused

    def forward(self, tables: SourceTables, users: torch.Tensor, items: torch.Tensor,
                negatives: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``users, items (B,)``, ``negatives (B, n)`` per row or ``(M,)`` shared ->
        ``{"ctr": (B,), "positive": (B,), "negative": (B, n | M), "ctr_negative": (B, n | 1)}``
        (keys present as heads and negatives allow: ``ctr*`` from the CTR head,
        ``positive``/``negative`` from the retrieval head; with every item as the pool,
        ``negative`` is -inf outside ``negative_pool``)."""
        u = self.fuse("user", _rows(tables.user, users), tables.user_mask[users])  # (B, D)
        i = self.fuse("item", _rows(tables.item, items), tables.item_mask[items])  # (B, D)
        out = {}
        if self.ctr is not None:
            out["ctr"] = self.ctr(u, i)
        if self.retrieval is not None:
            out["positive"] = self.retrieval(u, i, items)
        if negatives is not None and negatives.dim() == 1:  # one pool shared by all rows
            every_item = _is_every_item(negatives, len(tables.item))
            if every_item:  # a full softmax: no gather (and no scatter in backward) needed
                j = self.fuse("item", tables.item, tables.item_mask)  # (n_items, D)
                pool = None
            else:
                j = self.fuse("item", _rows(tables.item, negatives),
                              tables.item_mask[negatives])  # (M, D)
                pool = negatives
            kept = self.negative_pool if every_item else None
            if self.retrieval is not None:
                out["negative"] = self.retrieval.all_items(u, j, pool)  # (B, M)
                if kept is not None:
                    out["negative"] = out["negative"].masked_fill(~kept, float("-inf"))
            if self.ctr is not None:  # one pool item per row is enough for the CTR head
                if kept is not None:  # in index order, some left out: draw among the rest
                    allowed = self.negative_items
                    pick = allowed[torch.randint(len(allowed), (len(u),), device=u.device)]
                elif every_item:  # in index order: draw the rows at random
                    pick = torch.randint(len(j), (len(u),), device=u.device)
                else:  # a uniform random pool: its first rows are already a random draw
                    pick = torch.arange(len(u), device=u.device) % len(j)
                out["ctr_negative"] = self.ctr(u, j[pick]).unsqueeze(1)  # (B, 1)
        elif negatives is not None:
            b, n = negatives.shape
            flat = negatives.reshape(-1)  # (B * n,)
            j = self.fuse("item", _rows(tables.item, flat), tables.item_mask[flat])  # (B * n, D)
            j = j.reshape(b, n, -1)  # (B, n, D)
            if self.retrieval is not None:
                out["negative"] = self.retrieval(u.unsqueeze(1), j, negatives)
            if self.ctr is not None:
                out["ctr_negative"] = self.ctr(u.unsqueeze(1), j)
        return out


class FusionModel(nn.Module):
    """Encoders (one per source, fixed order) + :class:`FusionScorer`.

    ``forward(users, items, negatives, graph)`` recomputes every source's tables (full-graph
    propagation, cheap at these sizes) over ``graph`` and scores the batch.
    """

    def __init__(self, encoders: Mapping[str, nn.Module], scorer: FusionScorer,
                 graph: TrainingGraph) -> None:
        super().__init__()
        self.sources = tuple(encoders)
        self.encoders = nn.ModuleDict(encoders)
        self.scorer = scorer
        self.graph = graph

    def tables(self, graph: TrainingGraph | None = None,
               rows: BatchRows | None = None) -> SourceTables:
        """Every source's vectors over ``graph`` (default: the full training graph); encoders
        that take ``rows`` (``batch_rows = True``) get the rows the batch scores."""
        graph = graph or self.graph
        encoders = [self.encoders[name] for name in self.sources]
        outputs = [encoder(graph, rows) if getattr(encoder, "batch_rows", False)
                   else encoder(graph) for encoder in encoders]
        user = torch.stack([o.user for o in outputs], dim=1)  # (n_users, S, d)
        item = torch.stack([o.item for o in outputs], dim=1)  # (n_items, S, d)
        user_mask = torch.stack([self.encoders[n].user_mask for n in self.sources], dim=1)
        item_mask = torch.stack([self.encoders[n].item_mask for n in self.sources], dim=1)
        return SourceTables(user, item, user_mask, item_mask)

    def forward(self, users: torch.Tensor, items: torch.Tensor,
                negatives: torch.Tensor | None = None,
                graph: TrainingGraph | None = None) -> dict[str, torch.Tensor]:
        scored = items if negatives is None else torch.cat([items, negatives.reshape(-1)])
        tables = self.tables(graph, BatchRows(users, scored))
        return self.scorer(tables, users, items, negatives)

    def _apply(self, fn, recurse=True):
        # The training graph is plain tensors (its operators are rebuilt for each view), not
        # buffers: move it with the module so that ``.to(device)`` is the one verb.
        super()._apply(fn, recurse)
        self.graph = map_tensors(self.graph, fn)
        return self

    def refresh(self) -> None:
        """Bring per-row inputs that training left stale up to date (the cached text vectors
        of a fine-tuned LM); a no-op for encoders without any."""
        for encoder in self.encoders.values():
            if hasattr(encoder, "refresh"):
                encoder.refresh()
