"""Matrix factorisation trained with BPR (top-K) or binary cross-entropy (CTR).

``score(u, i) = <p_u, q_i> + b_i + b``. With the BPR loss each training positive ``(u, i)`` is
paired with a uniformly drawn item ``j`` the user has no training positive for, and
``-log sigmoid(score(u, i) - score(u, j))`` is minimised; with BCE the labelled training pairs
(plus sampled negatives when the split has none) are fitted as logits. Training runs in the
shared :class:`~fusionrec.training.trainer.Trainer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from fusionrec.trainer_config import TrainerConfig
from fusionrec.data.split import Split
from fusionrec.models.base import (RecommenderBase, TorchTrainable, TrainerFactory,
                                   fit_with_runner)
from fusionrec.models.common.sampling import (NegativeSampler, pair_loss,
                                                          resolve_loss, training_batches)
from fusionrec.models.common.embedding_servable import EmbeddingServable, require_same
from fusionrec.models.common.persist import (load_model_files, module_tensors,
                                                  module_weights, save_model_files)
from fusionrec.models.common.ranking import SeenItems, recommend_by_scores
from fusionrec.models.params import PAIR_LOSSES, at_least, one_of
from fusionrec.models.servable import item_keys, user_keys


def _mf_module(n_users: int, n_items: int, dim: int, init_std: float, dropout: float):
    import torch

    class MF(torch.nn.Module):
        """Shapes: ``users`` (B,), ``items`` (B, n) → scores (B, n)."""

        def __init__(self) -> None:
            super().__init__()
            self.user = torch.nn.Embedding(n_users, dim)
            self.item = torch.nn.Embedding(n_items, dim)
            self.item_bias = torch.nn.Parameter(torch.zeros(n_items))
            self.bias = torch.nn.Parameter(torch.zeros(()))
            self.dropout = torch.nn.Dropout(dropout)
            torch.nn.init.normal_(self.user.weight, std=init_std)
            torch.nn.init.normal_(self.item.weight, std=init_std)

        def forward(self, users, items):
            p = self.dropout(self.user(users)).unsqueeze(1)   # (B, 1, d)
            q = self.dropout(self.item(items))                 # (B, n, d)
            return (p * q).sum(-1) + self.item_bias[items] + self.bias

    return MF()


@dataclass(frozen=True)
class BPRMFConfig:
    """``model.params`` of ``bpr-mf``."""

    embedding_dim: int = 64  # width of the user and item vectors
    loss: str = "auto"       # auto (BPR on top-K splits, BCE on CTR splits) | bpr | bce
    n_negatives: int = 1     # sampled negatives per training positive
    init_std: float = 0.01   # standard deviation of the normal initialisation

    def __post_init__(self) -> None:
        at_least("bpr-mf", "embedding_dim", self.embedding_dim, 1)
        one_of("bpr-mf", "loss", self.loss, PAIR_LOSSES)
        at_least("bpr-mf", "n_negatives", self.n_negatives, 1)


class BPRMF(EmbeddingServable, RecommenderBase, TorchTrainable):
    """BPR matrix factorisation; servable (:mod:`fusionrec.models.common.embedding_servable`).

    Parameters: ``embedding_dim``; ``loss`` ``"auto"`` (BCE for CTR splits, BPR for top-K),
    ``"bpr"`` or ``"bce"``; ``n_negatives`` sampled per positive; ``init_std`` of the embeddings;
    ``trainer``: the :class:`TrainerConfig` (or mapping) ``fit`` uses; ``runner``
    (:data:`~fusionrec.models.base.TrainerFactory`) makes the Trainer ``fit`` runs.
    """

    name: ClassVar[str] = "bpr-mf"
    sources: ClassVar[tuple[str, ...]] = ("interactions",)  # all it reads (benchmark reports)
    # Pure IDs: a cold user's or item's vector is untrained noise (fusionrec.evaluation.cold).
    cold_start: ClassVar[frozenset[str]] = frozenset()
    SMOKE_PARAMS: ClassVar[dict] = {"embedding_dim": 8,
                                    "trainer": {"epochs": 3, "batch_size": 512, "lr": 0.01}}
    ROW_KEYS: ClassVar[dict] = {"user.weight": user_keys, "item.weight": item_keys,
                                "item_bias": item_keys}
    INFLUENCE: ClassVar[tuple[str, ...]] = (
        "weights: item vectors and biases trained on the user's examples",)

    def __init__(self, embedding_dim: int = 64, loss: str = "auto", n_negatives: int = 1,
                 init_std: float = 0.01, trainer: TrainerConfig | Mapping | None = None,
                 runner: TrainerFactory | None = None) -> None:
        BPRMFConfig(embedding_dim, loss, n_negatives, init_std)  # validates
        self.embedding_dim = embedding_dim
        self.loss_name = loss
        self.n_negatives = n_negatives
        self.init_std = init_std
        self.trainer = (trainer if isinstance(trainer, TrainerConfig)
                        else TrainerConfig(**dict(trainer or {})))
        self.runner = runner

    def get_params(self) -> dict[str, Any]:
        return {"embedding_dim": self.embedding_dim, "loss": self.loss_name,
                "n_negatives": self.n_negatives, "init_std": self.init_std}

    # -- training (the Trainable protocol) -------------------------------------------------
    def fit(self, split: Split) -> "BPRMF":
        return fit_with_runner(self, split, self.trainer, self.runner)

    def build(self, split: Split, config: TrainerConfig):
        n_users, n_items = split.features.n_users, split.features.n_items
        self.resolved_loss_ = resolve_loss(self.loss_name, split.task)
        self.seen_ = SeenItems.from_pairs(split.train, n_users)
        self._sampler = NegativeSampler.from_seen(self.seen_, n_items)
        self.module_ = _mf_module(n_users, n_items, self.embedding_dim, self.init_std,
                                  config.dropout)
        return self.module_

    def training_batches(self, split: Split, batch_size: int, rng: np.random.Generator):
        return training_batches(split, self.resolved_loss_, self._sampler, self.n_negatives,
                                batch_size, rng)

    def loss(self, module, batch):
        users, items, labels = batch
        return pair_loss(module(users, items), labels)  # scores (B, 1 + n_negatives) or (B, 1)

    # -- inference ---------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise RuntimeError("BPRMF is not fitted; call fit(split) first")

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        import torch

        self._check_fitted()
        m = self.module_
        device = m.bias.device
        u = torch.from_numpy(np.array(users, dtype=np.int64)).to(device)
        i = torch.from_numpy(np.array(items, dtype=np.int64)).to(device)
        with torch.no_grad():
            out = (m.user(u) * m.item(i)).sum(-1) + m.item_bias[i] + m.bias
        return out.cpu().numpy()

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """``(len(users), n_items)`` scores."""
        return self._score_rows(users).cpu().numpy()

    def _score_rows(self, users: np.ndarray):
        """:meth:`score_all` as a tensor on the model's device (ranking stays there)."""
        import torch

        m = self.module_
        with torch.no_grad():
            u = m.user(torch.from_numpy(np.array(users, dtype=np.int64)).to(m.bias.device))
            return u @ m.item.weight.T + m.item_bias + m.bias

    def recommend(self, users: np.ndarray, k: int = 10,
                  exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        return recommend_by_scores(self._score_rows, users, k, self.seen_, exclude_seen)

    # -- servable (EmbeddingServable) ---------------------------------------------------------
    def _final_vectors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._check_fitted()
        m = self.module_
        as_numpy = lambda t: t.detach().cpu().numpy()  # noqa: E731
        return (as_numpy(m.user.weight), as_numpy(m.item.weight),
                as_numpy(m.item_bias + m.bias))  # the global bias folded into each item's

    def _zero_user(self, user: int) -> None:
        import torch

        self._check_fitted()
        with torch.no_grad():
            self.module_.user.weight[user] = 0

    def _check_parent_weights(self, weights) -> None:
        self._check_fitted()
        require_same(self.module_.state_dict(), weights)

    # -- persistence -------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        self._check_fitted()
        return save_model_files(directory, self.name, self.get_params(),
                                module_tensors(self.module_, self.seen_),
                                state={"resolved_loss": self.resolved_loss_})

    @classmethod
    def load(cls, directory: str | Path) -> "BPRMF":
        meta, tensors = load_model_files(directory, cls.name)
        model = cls(**meta["params"])
        weights = module_weights(tensors)
        n_users, dim = weights["user.weight"].shape
        model.module_ = _mf_module(n_users, weights["item.weight"].shape[0], dim, 0.0, 0.0)
        model.module_.load_state_dict(weights)
        model.module_.eval()
        model.seen_ = SeenItems(tensors["seen_indptr"], tensors["seen_indices"])
        model.resolved_loss_ = meta["state"]["resolved_loss"]
        return model
