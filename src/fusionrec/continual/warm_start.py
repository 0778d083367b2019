"""Warm-starting a fusion model on a grown dataset from a finished run's weights.

A run folder keeps the fusion model's per-source *tables* and the scorer, not the encoders'
weights; those are in the Trainer's checkpoint (``checkpoints/``: the best weights, or the last
ones when training had no validation). The checkpoint is accepted only when its scorer weights
equal those of the run's (checksummed) model, so a stale or foreign checkpoint is refused.

Row tables (ID and social embeddings, KG entities, attribute features, item biases) are copied
row by row through keys that do not depend on positions (raw user/item ids, entity ids,
feature names): a user, item or tag the parent never saw keeps the fresh row ``build`` gave it.
Every other tensor must keep its shape and is copied whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from fusionrec.data.schema import Dataset
from fusionrec.data.split import Pairs, Split
from fusionrec.errors import FusionRecError


class WarmStartError(FusionRecError, ValueError):
    """The parent run cannot seed a warm start (no or mismatched checkpoint, unknown tensor)."""


@dataclass(frozen=True)
class WarmWeights:
    """The parent's full module state and the features it was built on (for the row keys)."""

    tensors: dict        # name -> torch.Tensor
    features: Dataset
    source: str          # "best" or "last": which checkpoint weights


def _entities(features: Dataset) -> tuple[str, ...]:
    """KG entity rows as ``kg_edges`` lays them out: the KG's entities, then one own entity per
    item without a link, in item order."""
    kg = features.kg
    linked = np.zeros(features.n_items, bool)
    linked[np.asarray(kg.link_item, np.int64)] = True
    own = tuple(f"item\x1f{features.items.ids[i]}" for i in np.flatnonzero(~linked))
    return tuple(f"entity\x1f{e}" for e in kg.entities.ids) + own


def _attribute_features(features: Dataset, side: str) -> tuple[str, ...]:
    """Feature names in the order ``build_encoders`` gives the attribute encoder's rows."""
    from fusionrec.models.fusion.attribute_features import feature_bags

    if side == "user":
        return feature_bags(features.user_attributes, None, features.n_users).features
    attrs = features.item_attributes
    tags = attrs.tags if attrs.tags is not None and len(attrs.tags) else None
    return feature_bags(attrs.attributes, tags, features.n_items).features


def _users(f: Dataset) -> tuple[str, ...]:
    return tuple(f"user\x1f{u}" for u in f.users.ids)


def _items(f: Dataset) -> tuple[str, ...]:
    return tuple(f"item\x1f{i}" for i in f.items.ids)


#: Row tables of the fusion module and how to name their rows.
ROW_KEYS: dict[str, Callable[[Dataset], tuple[str, ...]]] = {
    "encoders.interactions.embedding.weight": lambda f: _users(f) + _items(f),
    "encoders.social.embedding.weight": lambda f: _users(f) + _items(f),
    "encoders.kg.entity.weight": _entities,
    "encoders.item_attributes.feature.weight": lambda f: _attribute_features(f, "item"),
    "encoders.user_attributes.feature.weight": lambda f: _attribute_features(f, "user"),
    "encoders.item_text.item_text": _items,  # persistent only when the LM is fine-tuned
    "encoders.item_text.user_text": _users,
    "scorer.retrieval.item_bias": _items,
}


def read_warm_weights(run_dir: str | Path, model, features: Dataset) -> WarmWeights:
    """The module weights behind ``model`` (the run's loaded fusion model) from the run's
    checkpoint; ``features`` is the run's ``split.features``."""
    import torch
    from safetensors.torch import load_file

    from fusionrec.training.checkpoint import CHECKPOINT_DIR

    folder = Path(run_dir) / CHECKPOINT_DIR
    meta = folder / "last.json"
    if not meta.is_file():
        raise WarmStartError(f"{run_dir} has no {CHECKPOINT_DIR}/last.json: a warm start needs "
                             "the Trainer's checkpoint (the run folder itself keeps only the "
                             "per-source tables), so retrain a run made by `fusionrec train`")
    state = json.loads(meta.read_text(encoding="utf-8"))
    tensors = load_file(str(folder / state["weights_file"]))
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    last = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    weights, source = (best, "best") if best else (last, "last")
    scorer = model.scorer_.state_dict()
    for name, value in scorer.items():
        saved = weights.get(f"scorer.{name}")
        if saved is None or saved.shape != value.shape or not torch.equal(saved, value):
            raise WarmStartError(f"{folder}: the checkpoint's scorer.{name} differs from the "
                                 "run's model; the checkpoint does not belong to this model")
    return WarmWeights(weights, features, source)


def load_warm_rows(module, warm: WarmWeights, features: Dataset) -> dict[str, int]:
    """Copy ``warm`` into ``module`` (built on ``features``); returns counts of copied and
    fresh rows over all row tables."""
    import torch

    state = module.state_dict()
    counts = {"copied_rows": 0, "fresh_rows": 0, "copied_tensors": 0}
    for name, target in state.items():
        old = warm.tensors.get(name)
        if old is None:
            raise WarmStartError(f"the parent run has no tensor {name!r}; was it trained with "
                                 "other model parameters or sources?")
        keys = ROW_KEYS.get(name)
        if keys is None:
            if old.shape != target.shape:
                raise WarmStartError(f"{name}: shape {tuple(old.shape)} in the parent, "
                                     f"{tuple(target.shape)} now, and no row mapping for it")
            state[name] = old.to(target.dtype).clone()
            counts["copied_tensors"] += 1
            continue
        old_index = {key: row for row, key in enumerate(keys(warm.features))}
        new_keys = keys(features)
        if len(new_keys) != target.shape[0] or len(old_index) != old.shape[0]:
            raise WarmStartError(f"{name}: {target.shape[0]} rows but {len(new_keys)} keys; "
                                 "the row layout of this table changed")
        pairs = [(row, old_index[key]) for row, key in enumerate(new_keys) if key in old_index]
        if pairs:
            new_rows, old_rows = (torch.as_tensor(p, dtype=torch.long) for p in zip(*pairs))
            fresh = target.clone()
            fresh[new_rows] = old[old_rows].to(target.dtype)
            state[name] = fresh
        counts["copied_rows"] += len(pairs)
        counts["fresh_rows"] += len(new_keys) - len(pairs)
    module.load_state_dict(state)
    return counts


class WarmStart:
    """A Trainable for the shared Trainer: ``model`` is built for the new split as usual, then
    started from ``warm``; ``seen`` (every training pair of the grown run, not just the rows of
    this pass) becomes the model's seen items, so rankings skip all of a user's known items."""

    def __init__(self, model, warm: WarmWeights, seen: Pairs) -> None:
        self.model = model
        self.warm = warm
        self.seen = seen
        self.rows_: dict[str, int] = {}

    def build(self, split: Split, config):
        from fusionrec.models.common.ranking import SeenItems

        module = self.model.build(split, config)
        self.rows_ = load_warm_rows(module, self.warm, split.features)
        self.model.seen_ = SeenItems.from_pairs(self.seen, split.features.n_users)
        return module

    def training_batches(self, split: Split, batch_size: int, rng: np.random.Generator):
        return self.model.training_batches(split, batch_size, rng)

    def loss(self, module, batch):
        return self.model.loss(module, batch)

    def param_groups(self, module):
        return self.model.param_groups(module)

    # what evaluation asks of a model while the Trainer validates this wrapper
    @property
    def outputs_probabilities(self) -> bool:
        return self.model.outputs_probabilities

    def score(self, users, items):
        return self.model.score(users, items)

    def score_pairs(self, pairs):
        return self.model.score_pairs(pairs)

    def recommend(self, users, k: int = 10, exclude_seen: bool = True):
        return self.model.recommend(users, k, exclude_seen)
