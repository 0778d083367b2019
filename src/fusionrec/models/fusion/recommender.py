"""``FusionRecommender``: the multi-source, LM-fused recommender behind the ``fusion`` model name.

Per-source encoders (IDs + LightGCN, LM text adapter, social propagation, KG attention,
attributes/tags) feed a fusion layer (concat / weighted / gated, with source dropout) and CTR
and/or retrieval heads, trained together in the shared Trainer. Only ``split.features`` is read.
A fitted model keeps per-source tables, not training data; it saves as safetensors + JSON.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from fusionrec.trainer_config import TrainerConfig
from fusionrec.data.split import Split
from fusionrec.devices import move
from fusionrec.graph.adjacency import index_tensor
from fusionrec.models.base import (RecommenderBase, SharesTextFeatures, TorchTrainable,
                                   TrainerFactory, fit_with_runner)
from fusionrec.models.common.persist import load_model_files, save_model_files
from fusionrec.models.common.ranking import SeenItems, recommend_by_scores
from fusionrec.models.fusion.config import FusionConfig
from fusionrec.models.fusion.content import PREFIX as CONTENT
from fusionrec.models.fusion.servable import FusionServable

log = logging.getLogger(__name__)
#: Folder of a saved model holding the fine-tuned LM (outside ``lm_mode: frozen``).
LM_DIR = "lm"


@dataclass(frozen=True)
class SourceWeights:
    """How much each source contributes to a user's and an item's fused vector."""

    sources: tuple[str, ...]
    user: np.ndarray  # (n, S), rows sum to 1 over the sources available for the row
    item: np.ndarray  # (n, S)


class FusionRecommender(FusionServable, RecommenderBase, TorchTrainable, SharesTextFeatures):
    """Recommender protocol over a fused multi-source network (see :class:`FusionConfig` for
    the parameters; ``trainer`` is the :class:`TrainerConfig` (or mapping) ``fit`` uses, and
    ``runner`` (:data:`~fusionrec.models.base.TrainerFactory`) makes the Trainer ``fit`` runs).

    ``score`` returns the CTR head's logit when the model has one, else the retrieval score;
    ``recommend`` ranks with the retrieval head when present (one matrix product per batch).
    Servable (:mod:`fusionrec.models.fusion.servable`).
    """

    name: ClassVar[str] = "fusion"
    SMOKE_PARAMS: ClassVar[dict] = {"embedding_dim": 8, "hidden": [16], "layers": 1,
                                    "encoder": {"model": "hashing:16"},
                                    "trainer": {"epochs": 2, "batch_size": 512, "lr": 0.01}}

    def __init__(self, trainer: TrainerConfig | Mapping | None = None,
                 runner: TrainerFactory | None = None, **params: Any) -> None:
        try:
            self.config = FusionConfig(**params)
        except TypeError as error:  # unknown keyword
            raise ValueError(f"fusion params: {error}") from None
        self.trainer = (trainer if isinstance(trainer, TrainerConfig)
                        else TrainerConfig(**dict(trainer or {})))
        self.runner = runner
        self.text_features = None

    @property
    def cold_start(self) -> frozenset[str]:
        """What the fitted model can score without training interactions: items through
        their text, attributes or KG; users through attributes, friends or (``text_user``
        ``lm``/``both``) their own text. Empty before ``fit``."""
        sources = set(getattr(self, "sources_", ()))
        out = set()
        if sources & {"item_text", "item_attributes", "kg"}:
            out.add("items")
        if sources & {"user_attributes", "social"} or (
                "item_text" in sources and self.config.text_user in ("lm", "both")):
            out.add("users")
        return frozenset(out)

    def get_params(self) -> dict[str, Any]:
        return {**self.config.to_dict(), "trainer": asdict(self.trainer)}

    def used_sources(self) -> tuple[str, ...]:
        return tuple(getattr(self, "sources_", ()))  # chosen from the data at build time

    def fit_details(self) -> dict[str, Any]:
        """With ``sources: auto``, ``{"source_selection": ...}``: every candidate source set
        with its valid value, epochs and seconds, the chosen set and the trainings it cost."""
        selection = getattr(self, "selection_", None)
        return {} if selection is None else {"source_selection": selection.to_dict()}

    def frozen_text_encoder(self, features):
        """The encoder of the frozen item-text features this model would compute from
        ``features``; None when it fine-tunes the LM or reads no item text."""
        cfg = self.config
        if cfg.lm_mode != "frozen":
            return None
        if not cfg.may_use("item_text"):
            return None
        if features.item_text is None or not features.item_text.fields:
            return None
        return cfg.text_encoder_config()

    def set_text_features(self, features) -> "FusionRecommender":
        """Use these ``TextFeatures`` (``.item (n_items, d)``, optional ``.user``) for
        ``item_text`` instead of encoding the split's texts with ``config.encoder``."""
        self.text_features = features
        return self

    # -- training (the Trainer's Trainable protocol) ---------------------------------------
    def fit(self, split: Split) -> "FusionRecommender":
        return fit_with_runner(self, split, self.trainer, self.runner)

    def build(self, split: Split, config: TrainerConfig):
        import torch

        from fusionrec.models.common.sampling import NegativeSampler
        from fusionrec.models.fusion.build import build_encoders, cold_user_sources, \
            load_live_lm, load_text_features, resolve_sources
        from fusionrec.models.fusion.model import FusionModel, FusionScorer
        from fusionrec.models.fusion.sources import TrainingGraph

        features, cfg = split.features, self.config
        if cfg.sources == "auto":  # trains the candidate sets first (nested Trainers)
            from fusionrec.models.fusion.selection import select_sources

            self.selection_ = select_sources(self, split, config)
            self.sources_ = self.selection_.chosen
        else:
            self.selection_ = None
            self.sources_ = resolve_sources(cfg, features)
        self.task_ = split.task
        self.heads_ = cfg.resolved_heads(split.task)
        text = live = None
        if "item_text" in self.sources_:
            encoder = cfg.text_encoder_config()
            if encoder.device == "auto":  # one setting: the encoder follows trainer.device
                encoder = dataclasses.replace(encoder, device=config.device)
            text = (self.text_features if self.text_features is not None
                    else load_text_features(features, encoder))
            live = load_live_lm(features, cfg) if cfg.lm_mode != "frozen" else None
        elif cfg.lm_mode != "frozen":
            log.warning("fusion: lm_mode=%s, but %r has no item_text to fine-tune an LM on",
                        cfg.lm_mode, features.name)
        self.text_lm_ = live.lm if live is not None else None
        if ("item_text" in self.sources_ and not cfg.hide_batch_edges
                and cfg.text_user != "lm" and split.task != "ctr"):
            # info, not a warning: shipped top-K configs chose false on valid (ML-100K, Last.FM);
            # on review-built text (Amazon) it was the cause of the loss, so say it where runs log
            log.info("fusion: hide_batch_edges is false, so in training each positive's own "
                     "item text sits inside the user's text profile, which no held-out item "
                     "does; the model may learn that self-match (see FusionConfig)")
        log.info("fusion: fusing sources %s with %s fusion, heads %s",
                 list(self.sources_), cfg.fusion, list(self.heads_))
        graph = TrainingGraph.from_features(features, with_social="social" in self.sources_)
        encoders = build_encoders(features, self.sources_, cfg, graph, text, seed=config.seed,
                                  live=live)
        trained = graph.item_has_users() if cfg.negative_pool == "trained" else None
        scorer = FusionScorer(len(self.sources_), cfg.embedding_dim, features.n_items,
                              cfg.fusion, cfg.source_dropout, self.heads_, cfg.hidden,
                              cfg.mlp_dropout, cfg.cross_source, cfg.cosine_scale, trained,
                              cfg.item_dropout(self.sources_), cfg.cold_user_dropout,
                              torch.tensor(cold_user_sources(self.sources_, cfg)))
        self.module_ = FusionModel(encoders, scorer, graph)
        self.seen_ = SeenItems.from_pairs(split.train, features.n_users)
        inter = features.interactions
        candidates = None if trained is None else trained.nonzero().squeeze(1).numpy()
        self._sampler = NegativeSampler.from_pairs(inter.user, inter.item, features.n_items,
                                                   candidates)
        self.tables_ = None
        return self.module_

    def param_groups(self, module) -> list[dict]:
        """Optimiser groups: a fine-tuned LM's weights at ``lm_lr``, the rest at the trainer's
        learning rate (``module`` may be the DDP-wrapped form of ``module_``)."""
        if self.text_lm_ is None:
            return [{"params": list(module.parameters())}]
        tuned = {id(p) for p in self.text_lm_.parameters()}
        return [{"params": [p for p in module.parameters() if id(p) not in tuned]},
                {"params": list(self.text_lm_.parameters()), "lr": self.config.lm_lr}]

    def training_batches(self, split: Split, batch_size: int, rng: np.random.Generator):
        from fusionrec.models.fusion.batches import training_batches

        cfg = self.config
        return training_batches(split, self._sampler, batch_size, cfg.n_negatives, rng,
                                shared=cfg.retrieval_loss == "softmax",
                                every_item=cfg.retrieval_loss == "full_softmax")

    def loss(self, module, batch):
        import torch

        from fusionrec.models.fusion.losses import bce_loss, full_softmax_loss, retrieval_loss

        positive = batch.labels > 0.5
        graph = None
        if self.config.hide_batch_edges:
            # Score the batch's positives as if held out: without their own edges.
            graph = self.module_.graph.without(batch.users[positive], batch.items[positive])
        out = module(batch.users, batch.items, batch.negatives, graph)
        total = torch.zeros((), device=batch.labels.device)
        if "ctr" in out:
            if self.task_ == "ctr":
                total = total + bce_loss(out["ctr"], batch.labels)
            else:  # top-K rows are all positives: contrast them with the sampled negatives
                negative = out["ctr_negative"].reshape(-1)  # (B * n,)
                logits = torch.cat([out["ctr"], negative])
                labels = torch.cat([batch.labels, torch.zeros_like(negative)])
                total = total + bce_loss(logits, labels)
        if "positive" in out and positive.any() and self.config.retrieval_weight > 0:
            weight = self.config.retrieval_weight if "ctr" in out else 1.0
            # top-K batches are all positives: a mask (or even a [:] view, whose backward
            # zero-fills and copies) would cost a (B, n_items) copy and scatter for nothing
            every_row = bool(positive.all())

            def kept(x):
                return x if every_row else x[positive]

            if self.config.retrieval_loss == "full_softmax":  # "negative" scores every item
                term = full_softmax_loss(kept(out["negative"]), kept(batch.items),
                                         self.config.temperature)
            else:
                term = retrieval_loss(self.config.retrieval_loss, kept(out["positive"]),
                                      kept(out["negative"]), self.config.temperature)
            total = total + weight * term
        return total

    # -- inference -------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "module_") and getattr(self, "tables_", None) is None:
            raise RuntimeError("FusionRecommender is not fitted; call fit(split) first")

    def _scoring(self):
        """``(tables, scorer)`` in eval mode: saved tables when loaded, else fresh ones."""
        import torch

        self._check_fitted()
        if getattr(self, "tables_", None) is not None:
            return self.tables_, self.scorer_
        self.module_.eval()
        with torch.no_grad():
            self.module_.refresh()  # a fine-tuned LM's text table follows its latest weights
            return self.module_.tables(), self.module_.scorer

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        import torch

        tables, scorer = self._scoring()
        u_idx = index_tensor(users).to(tables.user.device)
        i_idx = index_tensor(items).to(tables.user.device)
        with torch.no_grad():
            u = scorer.fuse("user", tables.user[u_idx], tables.user_mask[u_idx])
            i = scorer.fuse("item", tables.item[i_idx], tables.item_mask[i_idx])
            out = scorer.ctr(u, i) if scorer.ctr is not None else scorer.retrieval(u, i, i_idx)
        return out.cpu().numpy()

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """``(len(users), n_items)`` scores (retrieval head if any, else CTR head)."""
        return self._score_rows(users).cpu().numpy()

    def _score_rows(self, users: np.ndarray):
        """:meth:`score_all` as a tensor on the model's device (ranking stays there)."""
        import torch

        tables, scorer = self._scoring()
        u_idx = index_tensor(users).to(tables.user.device)
        with torch.no_grad():
            u = scorer.fuse("user", tables.user[u_idx], tables.user_mask[u_idx])  # (B, D)
            items = scorer.fuse("item", tables.item, tables.item_mask)  # (n_items, D)
            if scorer.retrieval is not None:
                return scorer.retrieval.all_items(u, items)
            return _ctr_all(scorer.ctr, u, items)

    def recommend(self, users: np.ndarray, k: int = 10,
                  exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        return recommend_by_scores(self._score_rows, users, k, self.seen_, exclude_seen)

    def source_weights(self, users: np.ndarray, items: np.ndarray) -> SourceWeights:
        """Per-row fusion weights of every source for ``users`` and ``items`` (explanations)."""
        import torch

        tables, scorer = self._scoring()
        u_idx = index_tensor(users).to(tables.user.device)
        i_idx = index_tensor(items).to(tables.user.device)
        with torch.no_grad():
            user = scorer.user_fusion.weights(tables.user[u_idx], tables.user_mask[u_idx])
            item = scorer.item_fusion.weights(tables.item[i_idx], tables.item_mask[i_idx])
        return SourceWeights(tuple(self.sources_), user.cpu().numpy(), item.cpu().numpy())

    # -- persistence -----------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        tables, scorer = self._scoring()
        tables = move(tables, "cpu")  # files are device-free: a GPU-trained model loads anywhere
        tensors = {f"scorer.{k}": v.detach().cpu().numpy()
                   for k, v in scorer.state_dict().items()}
        tensors.update({"tables.user": tables.user.numpy(), "tables.item": tables.item.numpy(),
                        "tables.user_mask": tables.user_mask.numpy().astype(np.uint8),
                        "tables.item_mask": tables.item_mask.numpy().astype(np.uint8),
                        "seen_indptr": self.seen_.indptr, "seen_indices": self.seen_.indices})
        # The content encoders, so a posted item gets the rows a cold item gets (content.py)
        tensors.update({f"{CONTENT}{k}": v for k, v in self.content_weights().items()})
        state = {"sources": list(self.sources_), "task": self.task_, "heads": list(self.heads_)}
        if getattr(self, "selection_", None) is not None:
            state["selection"] = self.selection_.to_dict()
        self._save_extra(tensors, state)
        lm = getattr(self, "text_lm_", None)
        if lm is not None:  # the fine-tuned LM and the text vectors it gave every row
            tensors.update({f"text.{side}": v for side, v in self.text_vectors().items()})
            state["text_lm"] = lm.identity
        directory = save_model_files(directory, self.name, self.get_params(), tensors, state)
        if lm is not None:
            lm.save(directory / LM_DIR)
        return directory

    def text_vectors(self) -> dict[str, np.ndarray]:
        """The fine-tuned LM's text vectors this model scores with: ``{"item": (n_items, d_lm)}``
        plus ``"user"`` when users' own texts are used; empty when the LM is frozen."""
        import torch

        self._check_fitted()
        if getattr(self, "tables_", None) is not None:  # loaded
            return dict(getattr(self, "text_vectors_", {}))
        if self.text_lm_ is None:
            return {}
        encoder = self.module_.encoders["item_text"]
        with torch.no_grad():
            encoder.refresh()  # a no-op unless training left the table stale
        out = {"item": encoder.item_text.cpu().numpy().copy()}
        if encoder.user_text is not None:
            out["user"] = encoder.user_text.cpu().numpy().copy()
        return out

    @classmethod
    def load(cls, directory: str | Path) -> "FusionRecommender":
        import torch

        from fusionrec.models.fusion.model import FusionScorer, SourceTables
        from fusionrec.models.fusion.selection import SourceSelection

        meta, tensors = load_model_files(directory, cls.name)
        model = cls(**meta["params"])
        state, cfg = meta["state"], model.config
        model.sources_, model.task_ = tuple(state["sources"]), state["task"]
        model.heads_ = tuple(state["heads"])
        model.selection_ = (SourceSelection.from_dict(state["selection"])
                            if "selection" in state else None)
        t = {k: torch.from_numpy(v.copy()) for k, v in tensors.items()}
        model.tables_ = SourceTables(t["tables.user"], t["tables.item"],
                                     t["tables.user_mask"].bool(), t["tables.item_mask"].bool())
        model.scorer_ = FusionScorer(len(model.sources_), cfg.embedding_dim,
                                     model.tables_.item.shape[0], cfg.fusion, cfg.source_dropout,
                                     model.heads_, cfg.hidden, cfg.mlp_dropout,
                                     cfg.cross_source, cfg.cosine_scale)
        model.scorer_.load_state_dict({k[len("scorer."):]: v for k, v in t.items()
                                       if k.startswith("scorer.")})
        model.scorer_.eval()
        model.seen_ = SeenItems(tensors["seen_indptr"], tensors["seen_indices"])
        model.content_ = {k[len(CONTENT):]: v for k, v in tensors.items()
                          if k.startswith(CONTENT)}
        model.text_lm_ = None
        if "text_lm" in state:
            from fusionrec.encoders.text_lm import TrainableTextLM

            model.text_lm_ = TrainableTextLM.load(Path(directory) / LM_DIR)
            model.text_vectors_ = {k[len("text."):]: v for k, v in tensors.items()
                                   if k.startswith("text.")}
        model._load_extra(tensors, state)
        return model

    def _save_extra(self, tensors: dict, state: dict) -> None:
        """Hook for subclasses: add their own tensors and state before saving (in place)."""

    def _load_extra(self, tensors: Mapping[str, np.ndarray], state: Mapping[str, Any]) -> None:
        """Hook for subclasses: restore what :meth:`_save_extra` added."""



def _ctr_all(head, users, items, rows: int = 1 << 16):
    """CTR logits of every ``users (B, D)`` x ``items (n, D)`` pair, ``(B, n)``, computed in
    blocks of about ``rows`` pairs so the MLP's input never holds all ``B * n`` pairs."""
    import torch

    out = torch.empty(len(users), len(items), device=users.device)
    step = max(1, rows // max(len(users), 1))
    for start in range(0, len(items), step):
        block = items[start:start + step].unsqueeze(0).expand(len(users), -1, -1)  # (B, s, D)
        out[:, start:start + step] = head(users.unsqueeze(1), block)
    return out
