"""``CrossEncoderRecommender``: fine-tune a language model on fused (user, candidate) prompts.

The seed's recipe (a BERT sequence classifier on text fusing behaviour, item attributes and
social signals), done with any Hugging Face encoder or decoder that has a classification head
(bundled all-MiniLM-L6-v2 by default) and trained with LoRA, prefix tuning, the top k layers,
fully, or not at all (head only). ``head="hybrid"`` adds a linear head over cheap side features
(history positivity, liked-vs-disliked similarity, LM quality probe, numeric attributes)
that starts at the history-positivity rule.

Few-shot use (``fewshot-tallrec``): only ``split.train`` (the k labelled records) trains.
``split.valid`` serves model selection only -- what TALLRec does with its validation set: it
picks the side head (rule, centroid or ridge strength from ``l2_grid``) and the LM's epoch (early stopping;
epoch 0, the LM head still at zero, included); its labels never enter a gradient. Training runs
in two stages: (1) the side head alone, fitted exactly on the k rows (``build``); (2) the LM,
with the side head fixed, so it learns only what the side features leave unexplained -- in the
shared Trainer like every torch model (checkpoints and resume, early stopping, metrics.jsonl and
TensorBoard). The unlabelled valid rows' side features also set the side features'
standardisation.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import numpy as np

from fusionrec.trainer_config import TrainerConfig
from fusionrec.data.split import Pairs, Split
from fusionrec.models.base import TorchTrainable, TrainerFactory, fit_with_runner
from fusionrec.models.common.ranking import PairScoring
from fusionrec.models.cross_encoder.config import CrossEncoderConfig


def with_negatives(positives: Pairs, features, seed: int) -> Pairs:
    """``positives`` plus one uniformly sampled item per row that its user has no interaction
    with (top-K protocols hand models positives only; a classifier needs both classes)."""
    inter = features.interactions
    n_items = features.n_items
    known = set((inter.user * n_items + inter.item).tolist())
    known |= set((positives.user * n_items + positives.item).tolist())
    rng = np.random.default_rng([seed, 7])
    negatives = rng.integers(0, n_items, len(positives))
    for row in range(len(positives)):  # resample the few collisions
        for _ in range(100):
            if int(positives.user[row]) * n_items + int(negatives[row]) not in known:
                break
            negatives[row] = rng.integers(0, n_items)
    return Pairs(np.r_[positives.user, positives.user], np.r_[positives.item, negatives],
                 np.r_[np.ones(len(positives)), np.zeros(len(positives))])


def _concat_rows(a, b):
    """Rows of ``a`` then ``b`` (``b`` may lack prompts: side-only rows)."""
    from fusionrec.models.cross_encoder.net import EncodedRows

    tokens = a.tokens + b.tokens if a.tokens is not None and b.tokens is not None else None
    side = np.concatenate([a.side, b.side]) if a.side is not None else None
    return EncodedRows(tokens, side, np.concatenate([a.labels, b.labels]))


class CrossEncoderRecommender(PairScoring, TorchTrainable):
    """Scores are logits (``sigmoid`` gives the like probability)."""

    name: ClassVar[str] = "cross-encoder"
    outputs_probabilities: ClassVar[bool] = False
    #: fast settings for the shared conformance tests (no LM download, hashing features)
    SMOKE_PARAMS: ClassVar[dict] = {"mode": "none", "feature_model": "hashing:32", "epochs": 2,
                                    "progress": False, "valid_rows": 64}

    def __init__(self, config: CrossEncoderConfig | dict | None = None, trainer=None,
                 runner: TrainerFactory | None = None, **params) -> None:
        # The run's trainer section lends only its seed and device: this model's own params
        # carry its training settings (``training_config``); explicit params win.
        if trainer is not None:
            params.setdefault("seed", trainer.seed)
            params.setdefault("device", trainer.device)
        if isinstance(config, CrossEncoderConfig):
            config = config.replace(**params) if params else config
        else:
            config = CrossEncoderConfig.from_dict({**(config or {}), **params})
        self.config = config
        self.runner = runner

    def get_params(self) -> dict:
        return self.config.to_dict()

    # ---------------------------------------------------------------- fitting
    def fit(self, split: Split) -> "CrossEncoderRecommender":
        """Train in the shared Trainer (``runner``), with this model's own training settings
        (``training_config`` replaces the defaults given here)."""
        return fit_with_runner(self, split, TrainerConfig(), self.runner)

    # -- the Trainer's Trainable protocol ---------------------------------------------------
    def training_config(self, config: TrainerConfig) -> TrainerConfig:
        """The LM trains with this model's ``lr``, ``epochs``, ``batch_size``,
        ``weight_decay``, ``patience``, ``seed``, ``num_threads`` and ``device`` (the run's
        ``trainer`` section passes its seed and device in through ``model.params``). Gradients
        are clipped at norm 1; the valid AUC picks the epoch, epoch 0 (the LM head still at
        zero in the hybrid) included. ``precision`` is fp32 because ``loss`` applies the
        autocast ``build`` chose by agreement with fp32."""
        cfg = self.config
        return dataclasses.replace(
            config, optimizer="adamw", lr=cfg.lr, warmup_steps=0, lr_plateau_factor=1.0,
            batch_size=cfg.batch_size, epochs=cfg.epochs, weight_decay=cfg.weight_decay,
            grad_clip=1.0, patience=cfg.patience, min_delta=0.0, monitor="auc", seed=cfg.seed,
            num_threads=cfg.num_threads, precision="fp32", device=cfg.device,
            validate_initial=True)

    def build(self, split: Split, config: TrainerConfig):
        """Everything before the LM's gradient steps: prompt pieces, side tables, the net,
        stage 1 (the side head, fitted exactly on the CPU, then frozen), the training and
        validation rows, and the autocast precision. Returns the net, on ``config.device``."""
        from fusionrec.devices import resolve_device
        from fusionrec.models.common.history import user_histories
        from fusionrec.models.common.ranking import SeenItems
        from fusionrec.models.cross_encoder.net import CrossEncoderNet
        from fusionrec.models.cross_encoder.train import choose_precision, fit_side_head

        cfg = self.config
        if len(split.train) == 0:
            raise ValueError("cross-encoder: the split's train part is empty")
        if split.task == "topk":  # positives only: add as many sampled negatives
            split = dataclasses.replace(
                split, train=with_negatives(split.train, split.features, cfg.seed),
                valid=with_negatives(split.valid, split.features, cfg.seed + 1))
        features = split.features
        self.fallback_items_, self.fallback_labels_ = user_histories(
            features, cfg.history_size + 1)
        inter = features.interactions
        self.seen_ = SeenItems.from_pairs(
            Pairs(inter.user, inter.item, np.ones(len(inter))), features.n_users)
        lm = self._load_lm(zero_head=cfg.head == "hybrid")
        self._set_pieces_from(features)
        self._build_side(split)
        prior = np.array([1.0 if n == "positivity" else 0.0 for n in self.feature_names_])
        self.net_ = CrossEncoderNet(lm.model if lm is not None else None,
                                    len(self.feature_names_), prior)
        train, side_train, valid, valid_side = self._training_rows(split)
        if side_train.side is not None:
            self.net_.set_side_scale(side_train.side if valid_side is None
                                     else np.concatenate([side_train.side, valid_side.side]))
        side = fit_side_head(self.net_, side_train, valid_side, cfg.l2_grid)
        self._side = {**side, "rows": len(side_train)}
        if self.net_.side is not None:
            self.net_.side.requires_grad_(False)
        # stage 1 ran on the CPU (a few exact L-BFGS fits); the LM trains on the device
        self.net_.to(resolve_device(config.device))
        self.precision_ = choose_precision(self.net_, train, cfg, self._pad_id,
                                           self._padding_side)
        self._rows = {"train": train, "valid": valid}  # dropped once training ends
        return self.net_

    def training_batches(self, split: Split, batch_size: int, rng: np.random.Generator):
        """One epoch over the LM's rows in ``rng``'s order: ``(inputs, labels)`` batches."""
        import torch

        from fusionrec.models.cross_encoder.net import collate

        rows = self._rows["train"]
        order = rng.permutation(len(rows))
        for start in range(0, len(order), batch_size):
            picked = order[start:start + batch_size]
            yield (collate(rows.take(picked), self._pad_id, self._padding_side),
                   torch.as_tensor(rows.labels[picked], dtype=torch.float32))

    def loss(self, module, batch):
        import torch

        from fusionrec.models.cross_encoder.train import autocast

        inputs, labels = batch
        with autocast(self.precision_["precision"], labels.device):
            logits = module(inputs)                                     # (B,)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), labels)

    def validation_metrics(self, split: Split) -> dict[str, float]:
        """AUC on the fixed ``valid_rows`` sample (each scoring pass is one LM forward per
        row), each row with its own history; ``{}`` without validation rows."""
        from fusionrec.models.cross_encoder.train import rows_auc

        valid = self._rows["valid"]
        if valid is None or len(valid) == 0:
            return {}
        return {"auc": rows_auc(self.net_, valid, 2 * self.config.batch_size,
                                self.precision_["precision"], self._pad_id,
                                self._padding_side)}

    def trained(self, summary) -> None:
        """When epoch 0 (the hybrid's LM head still at zero) stayed best, the LM adds exactly
        nothing, so scoring skips it."""
        if summary.best_epoch == 0 and self.config.head == "hybrid":
            self.net_.lm_active = False
        no_lm = self.net_.lm is None
        self.summary_ = {
            "epochs_run": summary.epochs_run, "lm_active": self.net_.lm_active,
            "best_epoch": 0 if no_lm else summary.best_epoch,
            "best_valid_auc": self._side.get("side_valid_auc") if no_lm else summary.best_value,
            "stopped_early": summary.stopped_early, "history": summary.history,
            "train_seconds": round(sum(r["seconds"] for r in summary.history), 2),
            "side": self._side}
        del self._rows  # no training data kept past fit

    def _training_rows(self, split: Split):
        """``(lm_train, side_train, lm_valid, side_valid)`` encoded rows.

        The side head trains on the k rows plus pseudo-rows from their own histories
        (``augment``); the LM on the k rows (plus pseudo-rows with ``augment_lm``). The side
        head is selected on every valid row (cheap); the LM's early stopping reads a fixed
        random ``valid_rows`` of them (each scoring pass costs one LM forward per row).
        """
        from fusionrec.models.common.history import history_pseudo_rows

        cfg = self.config
        train = side_train = self._encode(split.train, training=True)
        if cfg.augment and (self.feature_names_ or cfg.augment_lm):
            pseudo = history_pseudo_rows(split.train, cfg.augment_min_history)
            if len(pseudo):
                side_train = _concat_rows(train, self._encode(pseudo, training=True,
                                                              prompts=cfg.augment_lm))
                train = side_train if cfg.augment_lm else train
        self._shot_pairs = None  # the leave-one-out table is for training rows only
        valid = valid_side = None
        if cfg.valid_rows and len(split.valid):
            if self.feature_names_:
                valid_side = self._encode(split.valid, prompts=False)
            n = len(split.valid) if cfg.valid_rows < 0 else min(cfg.valid_rows, len(split.valid))
            rows = np.sort(np.random.default_rng(cfg.seed).permutation(len(split.valid))[:n])
            valid = self._encode(split.valid.take(rows))
        return train, side_train, valid, valid_side

    def _load_lm(self, zero_head: bool, apply: bool = True):
        from fusionrec.models.cross_encoder.backbone import load_lm

        lm = load_lm(self.config, zero_head, apply) if self.config.uses_lm else None
        self.tokenizer_ = lm.tokenizer if lm is not None else None
        self.lm_info_ = ({"model_id": lm.model_id, "weights_hash": lm.weights_hash,
                          "is_decoder": lm.is_decoder} if lm is not None else None)
        return lm

    @property
    def _pad_id(self) -> int:
        return int(self.tokenizer_.pad_token_id) if self.tokenizer_ is not None else 0

    @property
    def _padding_side(self) -> str:
        return getattr(self.tokenizer_, "padding_side", "right") if self.tokenizer_ else "right"

    def _counter(self):
        from fusionrec.models.cross_encoder.prompts import tokenizer_counter
        from fusionrec.text.budget import count_tokens

        return tokenizer_counter(self.tokenizer_) if self.tokenizer_ is not None else count_tokens

    def _set_pieces_from(self, features) -> None:
        from fusionrec.models.cross_encoder.prompts import PromptPieces

        cfg = self.config
        self.pieces_ = PromptPieces.from_dataset(features, cfg.prompt_sources, cfg.item_budget,
                                                 self._counter())

    def _build_side(self, split: Split) -> None:
        """Side tables and feature names; the shot prior counts the training rows' (user, item)
        pairs, targets and history entries alike."""
        from fusionrec.models.common.history import row_history
        from fusionrec.models.cross_encoder.side_features import (build_tables, feature_names,
                                                                  shot_pairs)

        cfg = self.config
        self.feature_names_: tuple[str, ...] = ()
        self.side_meta_: dict = {}
        if cfg.head != "hybrid":
            return
        n_items = split.features.n_items
        train = split.train
        history = row_history(train, self.fallback_items_, self.fallback_labels_,
                              cfg.history_size)
        self._shot_pairs = shot_pairs(train.user, train.item, train.label, history, n_items)
        self.tables_, categories, self.side_meta_ = build_tables(
            split.features, self.pieces_.item_texts, cfg, *self._shot_pairs,
            progress=cfg.progress)
        self.feature_names_ = feature_names(cfg.side_features, self.tables_, categories)

    def _encode(self, pairs: Pairs, training: bool = False, prompts: bool = True):
        """Prompts, side features (and labels) of ``pairs``, ready for the net."""
        from fusionrec.models.common.history import row_history
        from fusionrec.models.cross_encoder.net import encode_rows
        from fusionrec.models.cross_encoder.prompts import PromptBuilder
        from fusionrec.models.cross_encoder.side_features import own_shot_labels, side_matrix

        cfg = self.config
        history = row_history(pairs, self.fallback_items_, self.fallback_labels_,
                              cfg.history_size)
        side = None
        if self.feature_names_:
            own = None
            if training and getattr(self, "_shot_pairs", None) is not None:
                own = own_shot_labels(pairs.user, pairs.item, *self._shot_pairs,
                                      len(self.pieces_.item_names))
            side = side_matrix(cfg.side_features, self.tables_, pairs.item, history, own)
        if not prompts:
            return encode_rows(None, None, side, cfg.max_length, pairs.label)
        prompts = None
        if self.tokenizer_ is not None:
            builder = PromptBuilder(self.pieces_, cfg.prompt_sources, cfg.max_length,
                                    cfg.item_budget, cfg.item_noun, self._counter())
            prompts = builder.build(pairs.user, pairs.item, history)
        return encode_rows(self.tokenizer_, prompts, side, cfg.max_length, pairs.label)

    # ---------------------------------------------------------------- scoring
    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise RuntimeError("CrossEncoderRecommender is not fitted; call fit(split) first")

    def prompts(self, pairs: Pairs) -> list[tuple[str, str]]:
        """The ``(user context, candidate)`` texts the LM reads for ``pairs`` (for inspection)."""
        from fusionrec.models.common.history import row_history
        from fusionrec.models.cross_encoder.prompts import PromptBuilder

        self._check_fitted()
        cfg = self.config
        history = row_history(pairs, self.fallback_items_, self.fallback_labels_,
                              cfg.history_size)
        return PromptBuilder(self.pieces_, cfg.prompt_sources, cfg.max_length, cfg.item_budget,
                             cfg.item_noun, self._counter()).build(pairs.user, pairs.item, history)

    def score_pairs(self, pairs: Pairs, progress: bool = False) -> np.ndarray:
        """One logit per row of ``pairs``, reading each row's own history when it has one."""
        from fusionrec.encoders.threads import torch_threads
        from fusionrec.models.cross_encoder.train import predict

        self._check_fitted()
        with torch_threads(self.config.num_threads):
            rows = self._encode(pairs)
            return predict(self.net_, rows, 2 * self.config.batch_size,
                           self.precision_["precision"], self._pad_id, self._padding_side,
                           progress)

    # score(users, items): logits for (user, item) rows whose histories are the users'
    # training interactions; recommend scores every item for every user (one prompt per pair),
    # so it is for small catalogues or re-ranking, not first-stage retrieval (PairScoring).
    recommend_batch_size: ClassVar[int] = 8

    def _n_items(self) -> int:
        return len(self.pieces_.item_names)

    # ---------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        from fusionrec.models.cross_encoder.persist import save_cross_encoder

        self._check_fitted()
        return save_cross_encoder(self, Path(directory))

    @classmethod
    def load(cls, directory: str | Path) -> "CrossEncoderRecommender":
        from fusionrec.models.cross_encoder.persist import load_cross_encoder

        return load_cross_encoder(cls, Path(directory))
