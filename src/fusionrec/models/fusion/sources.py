"""What every per-source encoder shares: its output type and the training-graph operators.

A source encoder is an ``nn.Module`` whose ``forward(graph)`` returns :class:`SourceVectors`
for *all* users and items, plus two static boolean buffers ``user_mask``/``item_mask`` saying
for which rows the source has real information (a user with no friends has no social signal);
fusion ignores a source where its mask is False.

Everything that depends on the training interactions goes through a :class:`TrainingGraph`
passed to ``forward``, so training can hide the edges of the pairs being scored
(:meth:`TrainingGraph.without`): a held-out pair never has its own edge in the graph, and
training pairs then look like held-out ones instead of being trivially "connected".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from fusionrec.data.schema import Dataset
from fusionrec.graph.adjacency import SparseOperator, index_tensor
from fusionrec.graph.masking import MaskableMatrix


@dataclass(frozen=True)
class SourceVectors:
    user: torch.Tensor  # (n_users, d)
    item: torch.Tensor  # (n_items, d)


@dataclass(frozen=True)
class BatchRows:
    """The users and items a training batch scores (repeats allowed): encoders that do
    per-row work in training (a fine-tuned LM re-encoding texts) limit it to these rows."""

    users: torch.Tensor  # (n,) long
    items: torch.Tensor  # (m,) long


@dataclass(frozen=True)
class SocialEdges:
    source: torch.Tensor  # (n_edges,) long
    target: torch.Tensor  # (n_edges,) long
    directed: bool = False


@dataclass(frozen=True)
class _Structure:
    """The maskable forms of every operator (shared by a graph and its ``without`` views)."""

    keys: torch.Tensor  # (n_pairs,) sorted user * n_items + item
    bipartite: MaskableMatrix
    user_items: MaskableMatrix
    item_users: MaskableMatrix
    social_bipartite: MaskableMatrix | None


@dataclass(frozen=True)
class TrainingGraph:
    """Operators over the distinct training (user, item) pairs that several encoders reuse."""

    n_users: int
    n_items: int
    users: torch.Tensor  # (n_pairs,) long
    items: torch.Tensor  # (n_pairs,) long
    user_items: SparseOperator  # (n_users, n_items), rows average a user's items
    item_users: SparseOperator  # (n_items, n_users), rows average an item's users
    bipartite: SparseOperator  # (n_users + n_items) square, LightGCN normalisation
    social: SocialEdges | None
    social_bipartite: SparseOperator | None  # [[S, R], [R^T, 0]], symmetric normalisation
    structure: _Structure = dataclasses.field(repr=False, compare=False)

    @classmethod
    def from_pairs(cls, users, items, n_users: int, n_items: int,
                   social: SocialEdges | None = None) -> "TrainingGraph":
        keys = torch.unique(index_tensor(users) * n_items + index_tensor(items))  # sorted
        users, items = keys // n_items, keys % n_items
        pair = torch.arange(len(keys))
        n = n_users + n_items
        bipartite = MaskableMatrix.build(torch.cat([users, items + n_users]),
                                         torch.cat([items + n_users, users]),
                                         torch.cat([pair, pair]), (n, n), "sym")
        joint = None
        if social is not None:
            s, t = social.source, social.target
            if not social.directed:
                s, t = torch.cat([s, t]), torch.cat([t, s])
            fixed = torch.full((len(s),), -1, dtype=torch.long)
            joint = MaskableMatrix.build(torch.cat([users, items + n_users, s]),
                                         torch.cat([items + n_users, users, t]),
                                         torch.cat([pair, pair, fixed]), (n, n), "sym")
        structure = _Structure(keys, bipartite,
                               MaskableMatrix.build(users, items, pair, (n_users, n_items), "row"),
                               MaskableMatrix.build(items, users, pair, (n_items, n_users), "row"),
                               joint)
        return cls._view(n_users, n_items, users, items, social, structure, None)

    @classmethod
    def _view(cls, n_users, n_items, users, items, social, structure: _Structure,
              keep: torch.Tensor | None) -> "TrainingGraph":
        joint = structure.social_bipartite
        return cls(n_users, n_items, users, items, structure.user_items.operator(keep),
                   structure.item_users.operator(keep), structure.bipartite.operator(keep),
                   social, None if joint is None else joint.operator(keep), structure)

    @classmethod
    def from_features(cls, features: Dataset, with_social: bool = False) -> "TrainingGraph":
        inter = features.interactions
        social = None
        if with_social and features.social is not None:
            social = SocialEdges(index_tensor(features.social.source),
                                 index_tensor(features.social.target), features.social.directed)
        return cls.from_pairs(inter.user, inter.item, features.n_users, features.n_items, social)

    def without(self, users, items) -> "TrainingGraph":
        """The same graph minus the edges of the given (user, item) pairs, re-normalised
        (same sparsity structure, dropped entries are zeros: O(nnz), no re-sorting)."""
        keys = self.structure.keys
        drop = index_tensor(users) * self.n_items + index_tensor(items)
        drop = drop.to(keys.device)
        at = torch.searchsorted(keys, drop).clamp(max=max(len(keys) - 1, 0))
        keep = torch.ones(len(keys), dtype=torch.bool, device=keys.device)
        if len(keys):
            keep[at[keys[at] == drop]] = False
        return self._view(self.n_users, self.n_items, self.users[keep], self.items[keep],
                          self.social, self.structure, keep)

    def user_has_items(self) -> torch.Tensor:
        """``(n_users,)`` bool: the user has at least one training item."""
        return torch.bincount(self.users, minlength=self.n_users) > 0

    def item_has_users(self) -> torch.Tensor:
        return torch.bincount(self.items, minlength=self.n_items) > 0


def register_masks(module: torch.nn.Module, user_mask, item_mask) -> None:
    """Attach the static availability masks as (non-persistent) buffers."""
    for name, mask in (("user_mask", user_mask), ("item_mask", item_mask)):
        tensor = torch.from_numpy(np.array(mask, dtype=bool))  # a copy, whatever the input
        module.register_buffer(name, tensor, persistent=False)
