"""``FusionLinks`` (model ``fusion-links``): the fusion model's user tower trained for
"people you may know" on link splits (task ``links``).

The same per-source encoders and user fusion as :class:`FusionRecommender` (interactions,
item text, tags/attributes, friends via social propagation, KG) give every user one fused
vector ``u``; a pair scores ``<u_a, u_b>`` (``cosine_scale`` turns it into a scaled cosine).
Training is a full softmax over users on the *training* friendships read from
``split.features.social``, the only friendships a link split lets a model see.

Neighbourhood prior (``prior``, default ``adamic-adar``): the pair score adds
``w * AA(a, b)`` on the training friend graph, ``w`` a learned scalar, so the fused vectors
learn what the graph's shared friends do not already say (tastes, tags, friends' tastes, far
neighbourhoods). ``prior: none`` scores with the fused vectors alone.

Edge hiding (``folds``): the training friendships are cut into ``folds`` parts; a batch of
fold ``f`` is scored over a graph *without* fold ``f``'s friendships, so a training pair is
never trivially connected by its own edge, as a held-out pair is not. Inference uses the whole
training graph. Each row's softmax skips the user and their friends in that graph, as
evaluation skips the user and their training friends.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import numpy as np

from fusionrec.trainer_config import TrainerConfig
from fusionrec.data.split import Split
from fusionrec.models.common.ranking import recommend_by_scores
from fusionrec.models.fusion.recommender import FusionRecommender
from fusionrec.models.links.graph import (
    csr_arrays,
    csr_from_arrays,
    friend_matrix,
    link_seen,
    require_links,
)


class FusionLinks(FusionRecommender):
    """Parameters: :class:`~fusionrec.models.fusion.config.FusionConfig`'s (heads, losses and
    negatives are unused) plus ``folds`` (edge-hiding parts, >= 2; 1 trains over the whole
    graph) and ``prior`` (``none`` or a name in
    :data:`~fusionrec.models.links.params.PRIORS`); ``trainer`` as
    :class:`FusionRecommender`."""

    name: ClassVar[str] = "fusion-links"
    TASKS: ClassVar[tuple[str, ...]] = ("links",)
    SMOKE_PARAMS: ClassVar[dict] = {**FusionRecommender.SMOKE_PARAMS, "folds": 2}
    # A link model ranks people, not items: it opts out of the servable and DP-head contracts
    # (a protocol method set to None is not implemented), so serving, retraining, in-place
    # forgetting and the DP head refuse it by its declaration.
    vector_tables = vector_scorer = head_inputs = None

    def __init__(self, trainer: TrainerConfig | Mapping | None = None, folds: int = 4,
                 prior: str = "adamic-adar", **params: Any) -> None:
        from fusionrec.models.links.params import FusionLinksConfig

        FusionLinksConfig(folds=folds, prior=prior)  # validates the link settings
        self.folds, self.prior = folds, prior
        super().__init__(trainer, **params)

    def get_params(self) -> dict[str, Any]:
        return {**super().get_params(), "folds": self.folds, "prior": self.prior}

    # -- training (the Trainer's Trainable protocol) ---------------------------------------
    def build(self, split: Split, config: TrainerConfig):
        from fusionrec.models.fusion.build import (
            build_encoders,
            load_text_features,
            resolve_sources,
        )
        from fusionrec.models.fusion.model import FusionModel, FusionScorer
        from fusionrec.models.fusion.sources import SocialEdges, TrainingGraph

        require_links(split, self.name)
        features, cfg = split.features, self.config
        if cfg.lm_mode != "frozen":
            raise ValueError("fusion-links: only lm_mode frozen (cached text vectors) is "
                             "supported")
        self.sources_ = resolve_sources(cfg, features)
        self.task_, self.heads_ = "links", ()
        text = None
        if "item_text" in self.sources_:
            text = (self.text_features if self.text_features is not None
                    else load_text_features(features, cfg.text_encoder_config()))
        self.text_lm_ = None
        adjacency = friend_matrix(features)
        graph = TrainingGraph.from_features(features, with_social="social" in self.sources_)
        encoders = build_encoders(features, self.sources_, cfg, graph, text, seed=config.seed)
        scorer = FusionScorer(len(self.sources_), cfg.embedding_dim, features.n_items,
                              cfg.fusion, cfg.source_dropout, (), cfg.hidden, cfg.mlp_dropout,
                              cfg.cross_source, cfg.cosine_scale)
        self.module_ = FusionModel(encoders, scorer, graph)
        # the prior's weight trains with the module (registered as a submodule's parameter)
        self.module_.link_prior = _prior_weight()
        self.seen_ = link_seen(adjacency)
        self.tables_ = None
        self._set_prior(adjacency)
        # one-way training friendships, each in one fold (seeded by the trainer's seed)
        upper = adjacency.tocoo()
        keep = upper.row < upper.col
        low, high = upper.row[keep].astype(np.int64), upper.col[keep].astype(np.int64)
        fold = np.random.default_rng([config.seed, 7]).integers(0, self.folds, len(low))
        inter = features.interactions
        self._fold_edges, self._fold_graphs, self._fold_seen, self._fold_priors = [], [], [], []
        for f in range(self.folds):
            # folds == 1: supervise on every friendship over the whole graph (no hiding)
            hidden = fold == f if self.folds > 1 else np.ones(len(low), dtype=bool)
            message = ~hidden if self.folds > 1 else hidden
            self._fold_edges.append((np.concatenate([low[hidden], high[hidden]]),
                                     np.concatenate([high[hidden], low[hidden]])))
            social = SocialEdges(_tensor(low[message]), _tensor(high[message]))
            with_social = "social" in self.sources_
            self._fold_graphs.append(TrainingGraph.from_pairs(
                inter.user, inter.item, features.n_users, features.n_items,
                social if with_social else None))
            self._fold_seen.append(_csr_pairs(low[message], high[message], features.n_users))
            self._fold_priors.append(self._prior_model(_adjacency(low[message], high[message],
                                                                  features.n_users)))
        return self.module_

    def _prior_model(self, adjacency):
        from fusionrec.models.links.neighbours import prior_scorer

        return None if self.prior == "none" else prior_scorer(self.prior, adjacency)

    def _set_prior(self, adjacency) -> None:
        self.adjacency_ = adjacency
        self.prior_ = self._prior_model(adjacency)

    def training_batches(self, split: Split, batch_size: int, rng: np.random.Generator):
        """``(fold, sources (B,), friends (B,))`` batches of one fold each, in random order."""
        import torch

        batches = []
        for f, (source, _target) in enumerate(self._fold_edges):
            order = rng.permutation(len(source))
            batches += [(f, order[s:s + batch_size]) for s in range(0, len(order), batch_size)]
        for i in rng.permutation(len(batches)):
            f, rows = batches[i]
            source, target = self._fold_edges[f]
            yield f, torch.from_numpy(source[rows]), torch.from_numpy(target[rows])

    def loss(self, module, batch):
        import torch
        import torch.nn.functional as F

        fold, source, target = batch
        raw = getattr(module, "module", module)  # the bare FusionModel under a DDP wrapper
        tables = raw.tables(self._fold_graphs[fold])
        users = raw.scorer.fuse("user", tables.user, tables.user_mask)  # (n_users, D)
        logits = self._pair_scores(users[source], users)  # (B, n_users)
        prior = self._fold_priors[fold]
        if prior is not None:
            rows = torch.from_numpy(prior.score_all(source.numpy()).astype(np.float32))
            logits = logits + raw.link_prior.weight * rows
        if self.config.temperature != 1.0:
            logits = logits / self.config.temperature
        skip = torch.zeros(logits.shape, dtype=torch.bool)
        indptr, indices = self._fold_seen[fold]
        rows, cols = _neighbour_pairs(source.numpy(), indptr, indices)
        skip[torch.from_numpy(rows), torch.from_numpy(cols)] = True
        skip[torch.arange(len(source)), source] = True
        skip[torch.arange(len(source)), target] = False  # folds == 1: the target is in the graph
        return F.cross_entropy(logits.masked_fill(skip, float("-inf")), target)

    def _pair_scores(self, left, right):
        """``left (B, D) x right (n, D)`` scores. With ``cosine_scale`` both sides carry the
        scale (the user tower's output), so one is divided out: ``scale * cos(a, b)``."""
        scores = left @ right.T
        return scores / self.config.cosine_scale if self.config.cosine_scale else scores

    # -- inference -------------------------------------------------------------------------
    def user_vectors(self) -> np.ndarray:
        """``(n_users, D)`` fused user vectors over the whole training graph."""
        import torch

        tables, scorer = self._scoring()
        with torch.no_grad():
            return scorer.fuse("user", tables.user, tables.user_mask).numpy()

    def _pair_scale(self) -> float:
        return 1.0 / self.config.cosine_scale if self.config.cosine_scale else 1.0

    def prior_weight(self) -> float:
        """The learned weight of the neighbourhood prior (0 without one)."""
        if self.prior == "none":
            return 0.0
        if getattr(self, "tables_", None) is not None:  # loaded
            return self.prior_weight_
        return float(self.module_.link_prior.weight.detach())

    def _rows(self, vectors: np.ndarray, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, np.int64)
        scores = self._pair_scores(vectors[users], vectors)
        if self.prior_ is not None:
            scores = scores + self.prior_weight() * self.prior_.score_all(users)
        return scores

    def score(self, users: np.ndarray, others: np.ndarray) -> np.ndarray:
        users, others = np.asarray(users, np.int64), np.asarray(others, np.int64)
        return self._rows(self.user_vectors(), users)[np.arange(len(users)), others]

    def score_all(self, users: np.ndarray) -> np.ndarray:
        return self._rows(self.user_vectors(), users)

    def recommend(self, users: np.ndarray, k: int = 10,
                  exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        vectors = self.user_vectors()  # once for every batch of users
        return recommend_by_scores(lambda batch: self._rows(vectors, batch), users, k,
                                   self.seen_, exclude_seen)

    # -- persistence: the base class's files plus the friend graph and the prior's weight ----
    def _save_extra(self, tensors: dict, state: dict) -> None:
        tensors.update(csr_arrays(self.adjacency_))
        state.update(prior_weight=self.prior_weight(), n_users=int(self.adjacency_.shape[0]))

    def _load_extra(self, tensors, state) -> None:
        self.prior_weight_ = float(state["prior_weight"])
        self._set_prior(csr_from_arrays(tensors, int(state["n_users"])))


def _prior_weight():
    """A module holding the prior's learned scalar weight (starts at 1: the plain prior)."""
    import torch

    module = torch.nn.Module()
    module.weight = torch.nn.Parameter(torch.ones(()))
    return module


def _tensor(values: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.int64))


def _adjacency(low: np.ndarray, high: np.ndarray, n: int):
    """Symmetric 0/1 CSR adjacency of the pairs ``(low, high)``."""
    from scipy import sparse

    rows, cols = np.concatenate([low, high]), np.concatenate([high, low])
    return sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n))


def _csr_pairs(low: np.ndarray, high: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Both directions of the pairs ``(low, high)`` as CSR ``(indptr, indices)``."""
    source, target = np.concatenate([low, high]), np.concatenate([high, low])
    order = np.lexsort((target, source))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(source, minlength=n))])
    return indptr.astype(np.int64), target[order].astype(np.int64)


def _neighbour_pairs(rows: np.ndarray, indptr: np.ndarray, indices: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(row position, neighbour)`` for every neighbour of every entry of ``rows``."""
    starts, counts = indptr[rows], indptr[rows + 1] - indptr[rows]
    position = np.repeat(np.arange(len(rows)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return position, indices[np.repeat(starts, counts) + offsets]
