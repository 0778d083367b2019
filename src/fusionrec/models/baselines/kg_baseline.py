"""A KGCN-style knowledge-graph baseline (Wang et al., WWW 2019), registered as ``kgcn``.

Each item is its KG entity; its representation is computed *for a given user* by ``n_iter``
rounds of aggregation over a fixed sample of ``neighbours`` KG neighbours per entity
(``fusionrec.graph.kg.neighbour_table``; reverse edges keep their relation, so the KG is read as
undirected). A neighbour reached through relation ``r`` gets weight ``softmax_r(mean(u * r))``:
the user decides which kinds of link matter. The "sum" aggregator gives
``act(W (self + sum_k w_k e_k) + b)`` (ReLU, tanh in the last round), and
``score(u, i) = <u, v_i^u>`` is a logit. Trained with BCE on labelled rows (a CTR split's own, or
positives plus fresh uniform negatives on top-K splits) plus KGCN's L2 penalty on all embedding
tables and aggregator weights.
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
from fusionrec.models.common.persist import (load_model_files, module_tensors,
                                                  module_weights, save_model_files)
from fusionrec.models.common.ranking import SeenItems, recommend_by_scores
from fusionrec.models.params import PAIR_LOSSES, MissingSourceError, at_least, one_of

#: KGCN's Last.FM setting, except a larger batch and learning rate (fewer, cheaper steps). One
#: thread: the tensors are tiny, and extra threads only add synchronisation on a busy machine.
DEFAULT_TRAINER = {"lr": 0.005, "batch_size": 512, "epochs": 50, "patience": 5,
                   "num_threads": 1}


def _kgcn_module(n_users: int, n_entities: int, n_relations: int, dim: int, n_iter: int,
                 neighbours: int):
    import torch
    from torch import nn

    class KGCNModule(nn.Module):
        """``users (B,)``, ``items (B, n)`` → ``(logits (B, n), l2 (scalar))``.

        Buffers hold the graph: ``item_entity (n_items,)`` and the neighbour table
        ``nb_entity / nb_relation / nb_mask (n_entities, K)``; they are saved with the weights.
        """

        def __init__(self) -> None:
            super().__init__()
            self.user = nn.Embedding(n_users, dim)
            self.entity = nn.Embedding(n_entities, dim)
            self.relation = nn.Embedding(max(n_relations, 1), dim)
            for table in (self.user, self.entity, self.relation):
                nn.init.xavier_uniform_(table.weight)
            self.aggregators = nn.ModuleList(nn.Linear(dim, dim) for _ in range(n_iter))
            self.register_buffer("item_entity", torch.zeros(0, dtype=torch.long))
            self.register_buffer("nb_entity", torch.zeros((n_entities, neighbours),
                                                          dtype=torch.long))
            self.register_buffer("nb_relation", torch.zeros((n_entities, neighbours),
                                                            dtype=torch.long))
            self.register_buffer("nb_mask", torch.zeros((n_entities, neighbours),
                                                        dtype=torch.bool))

        def _item_vectors(self, user, entities):
            """user ``(N, d)``, entities ``(N,)`` → user-specific item vectors ``(N, d)``."""
            hops, rels, masks = [entities[:, None]], [], []         # hop h: (N, K^h)
            for _ in range(n_iter):
                last = hops[-1]
                hops.append(self.nb_entity[last].flatten(1))
                rels.append(self.nb_relation[last].flatten(1))
                masks.append(self.nb_mask[last].flatten(1))
            vectors = [self.entity(h) for h in hops]                  # (N, K^h, d)
            n, k = len(entities), neighbours
            query = user[:, None, None, :]                            # (N, 1, 1, d)
            for step, linear in enumerate(self.aggregators):
                act = torch.tanh if step == n_iter - 1 else torch.relu
                nxt = []
                for hop in range(n_iter - step):
                    own = vectors[hop]                                # (N, K^hop, d)
                    nbr = vectors[hop + 1].view(n, -1, k, dim)        # (N, K^hop, K, d)
                    rel = self.relation(rels[hop]).view(n, -1, k, dim)
                    mask = masks[hop].view(n, -1, k)
                    logits = (query * rel).mean(-1).masked_fill(~mask, float("-inf"))
                    weight = torch.nan_to_num(torch.softmax(logits, -1), nan=0.0)
                    message = (weight.unsqueeze(-1) * nbr).sum(-2)  # (N, K^hop, d)
                    nxt.append(act(linear(own + message)))
                vectors = nxt
            return vectors[0][:, 0]

        def forward(self, users, items):
            b, n = items.shape
            flat_users = users[:, None].expand(b, n).reshape(-1)
            user = self.user(flat_users)                              # (B n, d)
            item = self._item_vectors(user, self.item_entity[items.reshape(-1)])
            logits = (user * item).sum(-1).view(b, n)
            l2 = sum(p.pow(2).sum() for name, p in self.named_parameters()
                     if name.endswith("weight")) / 2
            return logits, l2

    return KGCNModule()


@dataclass(frozen=True)
class KGCNConfig:
    """``model.params`` of ``kgcn``."""

    embedding_dim: int = 16   # width of user, entity and relation vectors
    n_iter: int = 1           # receptive-field depth (hops over the knowledge graph)
    neighbours: int = 8       # neighbours sampled per entity
    l2_weight: float = 1e-4   # L2 on the batch's vectors
    loss: str = "auto"        # auto (BCE) | bce | bpr
    n_negatives: int = 1      # sampled negatives per positive on top-K splits

    def __post_init__(self) -> None:
        for key in ("embedding_dim", "n_iter", "neighbours", "n_negatives"):
            at_least("kgcn", key, getattr(self, key), 1)
        at_least("kgcn", "l2_weight", self.l2_weight, 0)
        one_of("kgcn", "loss", self.loss, PAIR_LOSSES)


class KGCN(RecommenderBase, TorchTrainable):
    """KGCN with the sum aggregator.

    Parameters: ``embedding_dim`` (16), ``n_iter`` (receptive-field depth, 1), ``neighbours``
    sampled per entity (8), ``l2_weight`` (1e-4), ``loss`` ``auto`` (BCE) / ``bce`` / ``bpr``,
    ``n_negatives`` per positive on top-K splits; ``trainer`` (defaults: :data:`DEFAULT_TRAINER`);
    ``runner`` as :class:`~fusionrec.models.baselines.bpr_mf.BPRMF`.
    Needs the ``kg`` source.
    """

    name: ClassVar[str] = "kgcn"
    sources: ClassVar[tuple[str, ...]] = ("interactions", "kg")  # all it reads (reports)
    SMOKE_PARAMS: ClassVar[dict] = {"embedding_dim": 8, "neighbours": 4,
                                    "trainer": {"epochs": 2, "batch_size": 256, "lr": 0.01}}

    def __init__(self, embedding_dim: int = 16, n_iter: int = 1, neighbours: int = 8,
                 l2_weight: float = 1e-4, loss: str = "auto", n_negatives: int = 1,
                 trainer: TrainerConfig | Mapping | None = None,
                 runner: TrainerFactory | None = None) -> None:
        KGCNConfig(embedding_dim, n_iter, neighbours, l2_weight, loss, n_negatives)  # validates
        self.embedding_dim, self.n_iter, self.neighbours = embedding_dim, n_iter, neighbours
        self.l2_weight, self.loss_name, self.n_negatives = l2_weight, loss, n_negatives
        self.trainer = (trainer if isinstance(trainer, TrainerConfig)
                        else TrainerConfig(**{**DEFAULT_TRAINER, **dict(trainer or {})}))
        self.runner = runner

    def get_params(self) -> dict[str, Any]:
        return {"embedding_dim": self.embedding_dim, "n_iter": self.n_iter,
                "neighbours": self.neighbours, "l2_weight": self.l2_weight,
                "loss": self.loss_name, "n_negatives": self.n_negatives}

    # -- training (the Trainer's Trainable protocol) ---------------------------------------
    def fit(self, split: Split) -> "KGCN":
        return fit_with_runner(self, split, self.trainer, self.runner)

    def build(self, split: Split, config: TrainerConfig):
        from fusionrec.graph.kg import kg_edges, neighbour_table

        features = split.features
        if features.kg is None:
            raise MissingSourceError("kgcn needs a knowledge graph (the kg source), but dataset "
                                     f"{features.name!r} has none")
        edges = kg_edges(features.kg, features.n_items, inverse="same")
        table = neighbour_table(edges, self.neighbours, seed=config.seed)
        self.resolved_loss_ = resolve_loss(self.loss_name, split.task, default_topk="bce")
        self.seen_ = SeenItems.from_pairs(split.train, features.n_users)
        self._sampler = NegativeSampler.from_seen(self.seen_, features.n_items)
        module = _kgcn_module(features.n_users, edges.n_entities, edges.n_relations,
                              self.embedding_dim, self.n_iter, self.neighbours)
        module.item_entity = edges.item_entity.clone()
        module.nb_entity, module.nb_relation, module.nb_mask = table.entity, table.relation, \
            table.mask
        self.module_ = module
        return module

    def training_batches(self, split: Split, batch_size: int, rng: np.random.Generator):
        return training_batches(split, self.resolved_loss_, self._sampler, self.n_negatives,
                                batch_size, rng)

    def loss(self, module, batch):
        users, items, labels = batch
        logits, l2 = module(users, items)
        return pair_loss(logits, labels) + self.l2_weight * l2

    # -- inference ---------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise RuntimeError("KGCN is not fitted; call fit(split) first")

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Logits of (user, item) rows, ``chunk`` rows at a time."""
        import torch

        self._check_fitted()
        device = self.module_.item_entity.device
        # copies (inputs may be read-only), on the model's device
        u = torch.from_numpy(np.array(users, dtype=np.int64)).to(device)
        i = torch.from_numpy(np.array(items, dtype=np.int64)).to(device)
        chunk = max(1, 2 ** 21 // self.neighbours ** self.n_iter)
        out = []
        with torch.no_grad():
            for start in range(0, len(u), chunk):
                logits, _ = self.module_(u[start:start + chunk], i[start:start + chunk, None])
                out.append(logits[:, 0])
        return torch.cat(out).cpu().numpy() if out else np.zeros(0, dtype=np.float32)

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """``(len(users), n_items)`` logits (item vectors depend on the user: one row each)."""
        users = np.asarray(users, dtype=np.int64)
        n_items = len(self.module_.item_entity)
        rows = np.repeat(users, n_items)
        return self.score(rows, np.tile(np.arange(n_items), len(users))).reshape(len(users), -1)

    def recommend(self, users: np.ndarray, k: int = 10,
                  exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        return recommend_by_scores(self.score_all, users, k, self.seen_, exclude_seen,
                                   batch_size=64)

    # -- persistence -------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        self._check_fitted()
        return save_model_files(directory, self.name, self.get_params(),
                                module_tensors(self.module_, self.seen_),
                                state={"resolved_loss": self.resolved_loss_})

    @classmethod
    def load(cls, directory: str | Path) -> "KGCN":
        meta, tensors = load_model_files(directory, cls.name)
        model = cls(**meta["params"])
        weights = module_weights(tensors)
        module = _kgcn_module(weights["user.weight"].shape[0], weights["entity.weight"].shape[0],
                              weights["relation.weight"].shape[0], model.embedding_dim,
                              model.n_iter, model.neighbours)
        module.item_entity = weights["item_entity"]  # sized before loading into it
        module.load_state_dict(weights)
        module.eval()
        model.module_ = module
        model.seen_ = SeenItems(tensors["seen_indptr"], tensors["seen_indices"])
        model.resolved_loss_ = meta["state"]["resolved_loss"]
        return model
