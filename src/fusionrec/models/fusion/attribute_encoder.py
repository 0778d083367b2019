"""``item_attributes`` / ``user_attributes`` sources: embeddings of categorical, multi-valued,
numeric columns and tags, averaged per row (see :mod:`attribute_features`)."""

from __future__ import annotations

import scipy.sparse as sp
import torch
from torch import nn

from fusionrec.devices import map_tensors
from fusionrec.graph.adjacency import SparseOperator
from fusionrec.models.fusion.attribute_features import FeatureBags
from fusionrec.models.fusion.sources import SourceVectors, TrainingGraph, register_masks


class AttributeEncoder(nn.Module):
    """One embedding per feature (category value, tag) and one linear map for the numeric block.

    The *native* side (items for item attributes) is ``bag @ E + numeric @ W``. The other side is
    a profile: the mean of the native vectors over its training interactions, plus a learned
    share of an optional ``extra`` bag in the same feature space (e.g. the tags a user
    assigned), so
    ``<user, item>`` compares a user's taste profile with an item's description.
    """

    def __init__(self, native: FeatureBags, native_side: str, graph: TrainingGraph, dim: int,
                 extra: sp.spmatrix | None = None, init_std: float = 0.1) -> None:
        super().__init__()
        if native_side not in ("user", "item"):
            raise ValueError(f"native_side must be user or item, got {native_side!r}")
        self.native_side = native_side
        n_features = native.bag.shape[1]
        self.native_bag = SparseOperator.from_scipy(native.bag) if n_features else None
        self.extra_bag = (SparseOperator.from_scipy(extra)
                          if extra is not None and n_features else None)
        # How much e.g. a user's own tags count next to the profile of their items: learned,
        # starting small (on Last.FM the item profile is by far the stronger signal).
        self.extra_weight = (nn.Parameter(torch.tensor(0.25)) if self.extra_bag is not None
                             else None)
        self.register_buffer("native_numeric", torch.from_numpy(native.numeric), persistent=False)
        self.feature = nn.Embedding(n_features, dim) if n_features else None
        if self.feature is not None:
            nn.init.normal_(self.feature.weight, std=init_std)
        n_numeric = native.numeric.shape[1]
        self.numeric = nn.Linear(n_numeric, dim, bias=False) if n_numeric else None
        native_mask = torch.from_numpy(native.has_rows)
        has_extra = (self.extra_bag.row_degree() > 0 if self.extra_bag is not None
                     else torch.zeros(1, dtype=torch.bool))
        native_profile = self._profile_operator(graph) @ native_mask.float()[:, None]
        profile_mask = (native_profile.squeeze(1) > 0) | has_extra
        masks = (native_mask, profile_mask)
        register_masks(self, *(masks if native_side == "user" else masks[::-1]))

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)  # the sparse bags are plain attributes: move them too
        self.native_bag = map_tensors(self.native_bag, fn)
        self.extra_bag = map_tensors(self.extra_bag, fn)
        return self

    def _profile_operator(self, graph: TrainingGraph) -> SparseOperator:
        return graph.user_items if self.native_side == "item" else graph.item_users

    def forward(self, graph: TrainingGraph) -> SourceVectors:
        native = 0.0
        if self.native_bag is not None:
            native = self.native_bag @ self.feature.weight  # (n_native, d)
        if self.numeric is not None:
            native = native + self.numeric(self.native_numeric)
        profile = self._profile_operator(graph) @ native  # (n_other, d)
        if self.extra_bag is not None:
            profile = profile + self.extra_weight * (self.extra_bag @ self.feature.weight)
        if self.native_side == "item":
            return SourceVectors(profile, native)
        return SourceVectors(native, profile)
