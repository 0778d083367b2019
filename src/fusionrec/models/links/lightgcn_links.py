"""LightGCN link score: ``score(u, v) = <e_u, e_v>`` of LightGCN's propagated user vectors.

LightGCN trains as the recommender it is (BPR on the training *interactions*), with the
training friendships inside its propagation graph (``social: true``, the default): each layer
mixes a user's vector with their friends' and their artists', so two people two hops apart in
the friend graph, or with shared tastes, end up close. Friendships are *not* its training
targets: it is the "user vectors of a recommender" baseline, fed the same sources the fusion
link model reads (``social: false`` measures taste alone). The link split's validation
friendships pick the epoch (early stopping on valid NDCG@10); held-out friendships never enter
the graph (it is built from ``split.features``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from fusionrec.trainer_config import TrainerConfig
from fusionrec.data.split import Pairs, Split
from fusionrec.models.base import (RecommenderBase, TorchTrainable, TrainerFactory,
                                   fit_with_runner)
from fusionrec.models.baselines.lightgcn import LightGCN
from fusionrec.models.common.persist import load_model_files, save_model_files
from fusionrec.models.common.ranking import SeenItems, recommend_by_scores
from fusionrec.models.links.graph import friend_matrix, link_seen, require_links


def interaction_split(split: Split) -> Split:
    """A top-K view of a link split for LightGCN: its training pairs are the features'
    interactions (every listen is a training listen here; friendships are what is held out)."""
    inter = split.features.interactions
    empty = Pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    train = Pairs(inter.user, inter.item, np.ones(len(inter), np.float32))
    return Split(split.protocol, "topk", split.seed, train, empty, empty, split.features)


class LightGCNLinks(RecommenderBase, TorchTrainable):
    """Parameters as :class:`LightGCN` (``social`` defaults to True); ``trainer`` as there."""

    name: ClassVar[str] = "lightgcn-links"
    TASKS: ClassVar[tuple[str, ...]] = ("links",)
    sources: ClassVar[tuple[str, ...]] = ("interactions", "social")
    SMOKE_PARAMS: ClassVar[dict] = {"embedding_dim": 8, "layers": 2,
                                    "trainer": {"epochs": 2, "batch_size": 512, "lr": 0.01}}

    def __init__(self, trainer: TrainerConfig | Mapping | None = None,
                 runner: TrainerFactory | None = None, **params: Any) -> None:
        params.setdefault("social", True)
        self.inner = LightGCN(trainer=trainer, **params)
        self.trainer = self.inner.trainer
        self.runner = runner

    def get_params(self) -> dict[str, Any]:
        return self.inner.get_params()

    def fit(self, split: Split) -> "LightGCNLinks":
        return fit_with_runner(self, split, self.trainer, self.runner)

    # -- the Trainer's protocol: LightGCN's own, on the interaction view -------------------
    def build(self, split: Split, config: TrainerConfig):
        require_links(split, self.name)
        self._inner_split = interaction_split(split)
        self.seen_ = link_seen(friend_matrix(split.features))
        return self.inner.build(self._inner_split, config)

    def training_batches(self, split: Split, batch_size: int, rng: np.random.Generator):
        return self.inner.training_batches(self._inner_split, batch_size, rng)

    def loss(self, module, batch):
        return self.inner.loss(module, batch)

    # -- inference ---------------------------------------------------------------------------
    def user_vectors(self) -> np.ndarray:
        if hasattr(self, "user_vectors_"):
            return self.user_vectors_
        return self.inner._vectors()[0]

    def score(self, users: np.ndarray, others: np.ndarray) -> np.ndarray:
        vectors = self.user_vectors()
        u, v = np.asarray(users, np.int64), np.asarray(others, np.int64)
        return np.einsum("nd,nd->n", vectors[u], vectors[v])

    def recommend(self, users: np.ndarray, k: int = 10,
                  exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        import torch

        if not hasattr(self, "seen_"):
            raise RuntimeError("LightGCNLinks is not fitted; call fit(split) first")
        vectors = torch.from_numpy(np.ascontiguousarray(self.user_vectors()))
        return recommend_by_scores(lambda batch: (vectors[batch] @ vectors.T).numpy(), users,
                                   k, self.seen_, exclude_seen)

    def save(self, directory: str | Path) -> Path:
        return save_model_files(directory, self.name, self.get_params(), {
            "user_vectors": self.user_vectors(), "seen_indptr": self.seen_.indptr,
            "seen_indices": self.seen_.indices})

    @classmethod
    def load(cls, directory: str | Path) -> "LightGCNLinks":
        meta, tensors = load_model_files(directory, cls.name)
        model = cls(**meta["params"])
        model.user_vectors_ = np.array(tensors["user_vectors"])
        model.seen_ = SeenItems(tensors["seen_indptr"], tensors["seen_indices"])
        return model
