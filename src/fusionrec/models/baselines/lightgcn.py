"""LightGCN (He et al., SIGIR 2020), optionally with the user–user friend graph (``social``).

Ego embeddings of users and items are smoothed over the normalised user–item graph
``D^-1/2 A D^-1/2`` (built from training positives only) and the layer outputs are averaged:
``e = mean(e0, A e0, ..., A^L e0)``; ``score(u, i) = <e_u, e_i>``. With ``social: true`` the
friend edges join the same graph (``[[S, R], [R^T, 0]]``), so each layer also mixes friends'
vectors. Trained in the shared Trainer with BPR (top-K) or BCE (CTR) plus an L2 penalty on the
batch's ego embeddings; a fitted model keeps the propagated vectors, so inference needs no graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from fusionrec.trainer_config import TrainerConfig
from fusionrec.data.split import Split
from fusionrec.devices import map_tensors
from fusionrec.models.base import (RecommenderBase, TorchTrainable, TrainerFactory,
                                   fit_with_runner)
from fusionrec.models.common.sampling import (NegativeSampler, pair_loss,
                                                          resolve_loss, training_batches)
from fusionrec.models.common.embedding_servable import EmbeddingServable
from fusionrec.models.common.persist import load_model_files, save_model_files
from fusionrec.models.common.ranking import SeenItems, recommend_by_scores
from fusionrec.models.params import PAIR_LOSSES, MissingSourceError, at_least, one_of
from fusionrec.models.servable import ServableError, item_keys, user_keys

#: LightGCN's recipe (64 dims, 3 layers, Adam at 5e-3) unless the run config says else. One
#: torch thread: on a busy shared 2-core machine a second thread made training several times
#: slower in wall time (barrier waits); raise ``num_threads`` on a dedicated machine.
DEFAULT_TRAINER = {"lr": 0.005, "batch_size": 2048, "epochs": 300, "patience": 10,
                   "num_threads": 1}


def _lightgcn_module(adjacency, n_users: int, n_items: int, dim: int, layers: int,
                     init_std: float):
    import torch

    from fusionrec.graph.propagation import propagate

    class LightGCNModule(torch.nn.Module):
        """``users (B,)``, ``items (B, n)`` → ``(scores (B, n), l2 (scalar))``."""

        def __init__(self) -> None:
            super().__init__()
            self.embedding = torch.nn.Embedding(n_users + n_items, dim)  # users, then items
            torch.nn.init.normal_(self.embedding.weight, std=init_std)
            self.adjacency = adjacency

        def _apply(self, fn, recurse=True):
            super()._apply(fn, recurse)  # the sparse graph is no buffer: move it along
            self.adjacency = map_tensors(self.adjacency, fn)
            return self

        def propagated(self):
            out = propagate(self.adjacency, self.embedding.weight, layers)  # (n_u + n_i, d)
            return out[:n_users], out[n_users:]

        def forward(self, users, items):
            user_vec, item_vec = self.propagated()
            u = user_vec[users].unsqueeze(1)                            # (B, 1, d)
            scores = (u * item_vec[items]).sum(-1)                      # (B, n)
            ego = self.embedding.weight
            l2 = (ego[users].pow(2).sum() + ego[items + n_users].pow(2).sum()) / len(users)
            return scores, l2

    return LightGCNModule()


@dataclass(frozen=True)
class LightGCNConfig:
    """``model.params`` of ``lightgcn``."""

    embedding_dim: int = 64   # width of the layer-0 user and item vectors
    layers: int = 3           # propagation rounds over the interaction graph
    reg_weight: float = 1e-4  # L2 on the batch's layer-0 vectors, per row
    loss: str = "auto"        # auto (BPR on top-K splits, BCE on CTR splits) | bpr | bce
    n_negatives: int = 1      # sampled negatives per training positive
    init_std: float = 0.1     # standard deviation of the normal initialisation
    social: bool = False      # also propagate over the social (friend) graph

    def __post_init__(self) -> None:
        at_least("lightgcn", "embedding_dim", self.embedding_dim, 1)
        at_least("lightgcn", "layers", self.layers, 0)
        at_least("lightgcn", "reg_weight", self.reg_weight, 0)
        one_of("lightgcn", "loss", self.loss, PAIR_LOSSES)
        at_least("lightgcn", "n_negatives", self.n_negatives, 1)


class LightGCN(EmbeddingServable, RecommenderBase, TorchTrainable):
    """LightGCN over training interactions (plus friends with ``social=True``); servable
    through its propagated vectors (:mod:`fusionrec.models.common.embedding_servable`).

    Parameters: ``embedding_dim`` (64), ``layers`` (3), ``reg_weight`` (L2 on the batch's ego
    embeddings, per row), ``loss`` ``auto`` (BPR for top-K, BCE for CTR) / ``bpr`` / ``bce``,
    ``n_negatives`` per positive, ``init_std``, ``social``; ``trainer`` (:class:`TrainerConfig`
    or mapping; defaults to :data:`DEFAULT_TRAINER`); ``runner`` as :class:`BPRMF`.
    """

    name: ClassVar[str] = "lightgcn"
    sources: ClassVar[tuple[str, ...]] = ("interactions",)  # all it reads (benchmark reports)
    SMOKE_PARAMS: ClassVar[dict] = {"embedding_dim": 8, "layers": 2,
                                    "trainer": {"epochs": 3, "batch_size": 512, "lr": 0.01}}
    ROW_KEYS: ClassVar[dict] = {"embedding.weight": lambda f: user_keys(f) + item_keys(f)}
    INFLUENCE: ClassVar[tuple[str, ...]] = (
        "interactions: propagation over the user's edges shaped the vectors of their items "
        "and of users within two hops",
        "weights: ego embeddings trained on the user's examples")

    def __init__(self, embedding_dim: int = 64, layers: int = 3, reg_weight: float = 1e-4,
                 loss: str = "auto", n_negatives: int = 1, init_std: float = 0.1,
                 social: bool = False, trainer: TrainerConfig | Mapping | None = None,
                 runner: TrainerFactory | None = None) -> None:
        LightGCNConfig(embedding_dim, layers, reg_weight, loss, n_negatives, init_std,
                       social)  # validates
        self.embedding_dim, self.layers, self.reg_weight = embedding_dim, layers, reg_weight
        self.loss_name, self.n_negatives, self.init_std = loss, n_negatives, init_std
        self.social = bool(social)
        self.trainer = (trainer if isinstance(trainer, TrainerConfig)
                        else TrainerConfig(**{**DEFAULT_TRAINER, **dict(trainer or {})}))
        self.runner = runner

    def get_params(self) -> dict[str, Any]:
        return {"embedding_dim": self.embedding_dim, "layers": self.layers,
                "reg_weight": self.reg_weight, "loss": self.loss_name,
                "n_negatives": self.n_negatives, "init_std": self.init_std,
                "social": self.social}

    def used_sources(self) -> tuple[str, ...]:
        """The interactions, and the friendship graph with ``social``."""
        return ("interactions", "social") if self.social else ("interactions",)

    # -- training (the Trainer's Trainable protocol) ---------------------------------------
    def fit(self, split: Split) -> "LightGCN":
        return fit_with_runner(self, split, self.trainer, self.runner)

    def build(self, split: Split, config: TrainerConfig):
        from fusionrec.graph.adjacency import bipartite_adjacency, social_bipartite_adjacency

        features = split.features
        n_users, n_items = features.n_users, features.n_items
        pos = split.train.positives()
        if self.social:
            if features.social is None:
                raise MissingSourceError("lightgcn with social=true needs a social source, but "
                                         f"dataset {features.name!r} has none")
            s = features.social
            adjacency = social_bipartite_adjacency(pos.user, pos.item, s.source, s.target,
                                                   n_users, n_items, directed=s.directed)
        else:
            adjacency = bipartite_adjacency(pos.user, pos.item, n_users, n_items)
        self.resolved_loss_ = resolve_loss(self.loss_name, split.task)
        self.seen_ = SeenItems.from_pairs(split.train, n_users)
        self._sampler = NegativeSampler.from_seen(self.seen_, n_items)
        self.module_ = _lightgcn_module(adjacency, n_users, n_items, self.embedding_dim,
                                        self.layers, self.init_std)
        return self.module_

    def training_batches(self, split: Split, batch_size: int, rng: np.random.Generator):
        return training_batches(split, self.resolved_loss_, self._sampler, self.n_negatives,
                                batch_size, rng)

    def loss(self, module, batch):
        users, items, labels = batch
        scores, l2 = module(users, items)
        return pair_loss(scores, labels) + self.reg_weight * l2

    # -- inference ---------------------------------------------------------------------------
    def _vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Propagated ``(users (n_users, d), items (n_items, d))`` from the live module (during
        training) or as saved."""
        if hasattr(self, "module_"):
            users, items = self._vector_tensors()
            return users.cpu().numpy(), items.cpu().numpy()
        if hasattr(self, "user_vectors_"):
            return self.user_vectors_, self.item_vectors_
        raise RuntimeError("LightGCN is not fitted; call fit(split) first")

    def _vector_tensors(self):
        """:meth:`_vectors` as tensors, on the live module's device."""
        import torch

        if hasattr(self, "module_"):
            with torch.no_grad():
                return self.module_.propagated()
        users, items = self._vectors()
        return torch.from_numpy(users), torch.from_numpy(items)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        user_vec, item_vec = self._vectors()
        u, i = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        return np.einsum("nd,nd->n", user_vec[u], item_vec[i])

    def recommend(self, users: np.ndarray, k: int = 10,
                  exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        import torch

        # propagate once for every batch of users; torch's matmul, on the model's device (on
        # the CPU it honours the Trainer's thread count, numpy's BLAS does not)
        users_t, items_t = self._vector_tensors()

        def rows(batch: np.ndarray):
            return users_t[torch.from_numpy(batch).to(users_t.device)] @ items_t.T

        return recommend_by_scores(rows, users, k, self.seen_, exclude_seen)

    # -- servable (EmbeddingServable) ---------------------------------------------------------
    def _final_vectors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        users, items = self._vectors()
        return users, items, np.zeros(len(items), np.float32)  # no bias: u . i

    def _zero_user(self, user: int) -> None:
        if hasattr(self, "module_"):  # the live graph would propagate it back in
            raise ServableError("forgetting edits a saved LightGCN run; load it first")
        self.user_vectors_[user] = 0

    def _check_parent_weights(self, weights) -> None:
        # A saved run keeps only the propagated vectors, which the checkpoint's ego embeddings
        # give only through the training graph: the layout is what can be checked here.
        ego = weights.get("embedding.weight")
        users, items = self._vectors()
        if ego is None or tuple(ego.shape) != (len(users) + len(items), users.shape[1]):
            raise ServableError("the checkpoint's embedding.weight does not match the run's "
                                "users, items and width; the checkpoint does not belong to "
                                "this model")

    # -- persistence -------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        user_vec, item_vec = self._vectors()
        return save_model_files(directory, self.name, self.get_params(), {
            "user_vectors": user_vec, "item_vectors": item_vec,
            "seen_indptr": self.seen_.indptr, "seen_indices": self.seen_.indices},
            state={"resolved_loss": self.resolved_loss_})

    @classmethod
    def load(cls, directory: str | Path) -> "LightGCN":
        meta, tensors = load_model_files(directory, cls.name)
        model = cls(**meta["params"])
        model.user_vectors_ = np.array(tensors["user_vectors"])   # writable copies for torch
        model.item_vectors_ = np.array(tensors["item_vectors"])
        model.seen_ = SeenItems(tensors["seen_indptr"], tensors["seen_indices"])
        model.resolved_loss_ = meta["state"]["resolved_loss"]
        return model
