"""The fusion model's side of the servable contract (:mod:`fusionrec.models.servable`).

- Vectors: the per-source tables the model scores with; the scorer is :class:`FusedSpace`.
- Forgetting: the user's rows are zeroed and rows that are plain averages over the training
  graph are re-derived exactly without them: an item's ``user_attributes`` row (the mean of its
  users' attribute vectors) and a user's ``item_text`` profile (the mean of their items' text
  vectors). Rows shaped by *trained* propagation (``interactions``, ``social``) and the weights
  themselves cannot be: they are listed in ``needs_retrain``.
- Warm start: row tables (ID and social embeddings, KG entities, attribute features, item
  biases) are copied row by row through keys that do not depend on positions (raw user/item
  ids, entity ids, feature names); every other tensor keeps its shape and is copied whole.
- DP head: the frozen tables and a freshly initialised scorer (:class:`PrivateHead`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from fusionrec.models.common.ranking import SeenItems
from fusionrec.models.servable import (ContentRows, ForgetOutcome, ServableError,
                                       ServingCapabilities, VectorTables, item_keys, user_keys,
                                       warm_state)


def _entities(features) -> tuple[str, ...]:
    """KG entity rows as ``kg_edges`` lays them out: the KG's entities, then one own entity per
    item without a link, in item order."""
    kg = features.kg
    linked = np.zeros(features.n_items, bool)
    linked[np.asarray(kg.link_item, np.int64)] = True
    own = tuple(f"item\x1f{features.items.ids[i]}" for i in np.flatnonzero(~linked))
    return tuple(f"entity\x1f{e}" for e in kg.entities.ids) + own


def _attribute_features(features, side: str) -> tuple[str, ...]:
    """Feature names in the order ``build_encoders`` gives the attribute encoder's rows."""
    from fusionrec.models.fusion.attribute_features import feature_bags

    if side == "user":
        return feature_bags(features.user_attributes, None, features.n_users).features
    attrs = features.item_attributes
    tags = attrs.tags if attrs.tags is not None and len(attrs.tags) else None
    return feature_bags(attrs.attributes, tags, features.n_items).features


#: Row tables of the fusion module and how to name their rows.
ROW_KEYS: dict[str, Callable[[Any], tuple[str, ...]]] = {
    "encoders.interactions.embedding.weight": lambda f: user_keys(f) + item_keys(f),
    "encoders.social.embedding.weight": lambda f: user_keys(f) + item_keys(f),
    "encoders.kg.entity.weight": _entities,
    "encoders.item_attributes.feature.weight": lambda f: _attribute_features(f, "item"),
    "encoders.user_attributes.feature.weight": lambda f: _attribute_features(f, "user"),
    "encoders.item_text.item_text": item_keys,  # persistent only when the LM is fine-tuned
    "encoders.item_text.user_text": user_keys,
    "scorer.retrieval.item_bias": item_keys,
}


@dataclass(frozen=True)
class HeadInputs:
    """What the DP head trains over: the frozen ``tables`` (torch), a fresh ``scorer``
    module, the users' ``seen`` items and the item count."""

    tables: Any
    scorer: Any
    seen: SeenItems
    n_items: int


def training_pairs(features) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) training pairs: the edges the fusion encoders average over."""
    inter = features.interactions
    keys = np.unique(inter.user * features.n_items + inter.item)
    return keys // features.n_items, keys % features.n_items


def _mean_over(groups: np.ndarray, members: np.ndarray, values: np.ndarray, n: int
               ) -> np.ndarray:
    """``out[g] = mean(values[m] for (g, m) in zip(groups, members))``; zeros for empty ``g``."""
    out = np.zeros((n,) + values.shape[1:], dtype=np.float64)
    np.add.at(out, groups, values[members])
    degree = np.bincount(groups, minlength=n)
    out[degree > 0] /= degree[degree > 0][:, None]
    return out.astype(values.dtype)


class FusionServable:
    """Mixin of :class:`~fusionrec.models.fusion.recommender.FusionRecommender`."""

    @property
    def serving(self) -> ServingCapabilities:
        sources = set(getattr(self, "sources_", ()))
        return ServingCapabilities(
            content_items=bool(sources & {"item_text", "item_attributes"}),
            fold_in="per source, a ridge map from the mean of the user's items' vectors to "
                    "the user's vector (exact for text, KG and item-attribute profiles)",
            heads=tuple(getattr(self, "heads_", ())), private_head=True)

    def vector_tables(self) -> VectorTables:
        tables, _ = self._scoring()
        as_numpy = lambda t: t.detach().cpu().numpy()  # noqa: E731
        return VectorTables(tuple(self.sources_), as_numpy(tables.user).astype(np.float32),
                            as_numpy(tables.user_mask).astype(bool),
                            as_numpy(tables.item).astype(np.float32),
                            as_numpy(tables.item_mask).astype(bool), self.seen_)

    def vector_scorer(self):
        from fusionrec.models.fusion.space import FusedSpace

        _, scorer = self._scoring()
        return FusedSpace(scorer, tuple(self.sources_))

    def text_encoder(self):
        if "item_text" not in getattr(self, "sources_", ()):
            return None
        return self.config.text_encoder_config()

    def content_weights(self) -> dict[str, np.ndarray]:
        """The content encoders' weights (``content.py``): from the module when fitted here,
        else as loaded (empty for a run saved before they were kept)."""
        from fusionrec.models.fusion.content import content_weights

        if getattr(self, "tables_", None) is not None:
            return dict(getattr(self, "content_", {}))
        return content_weights(self.module_)

    def content_item_rows(self, text_vector: np.ndarray | None,
                          attribute_row: np.ndarray | None) -> ContentRows | None:
        """The rows this model gives an item without training interactions, from the LM
        vector of its text and its item-attribute feature row (see
        :func:`fusionrec.models.fusion.content.new_item_rows`); None when the saved run lacks
        the content weights, or when its LM is fine-tuned (the service encodes new texts with
        the pretrained LM, not the tuned one). ``bias``: the mean retrieval bias of the run's
        items without a training interaction (a cold-items run's cold items), None when it has
        none."""
        from fusionrec.models.fusion.content import new_item_rows

        if getattr(self, "text_lm_", None) is not None:
            return None
        weights = self.content_weights()
        needs = {"item_text": "item_text.adapter.", "item_attributes": "item_attributes."}
        if any(name in self.sources_ and not any(k.startswith(prefix) for k in weights)
               for name, prefix in needs.items()):
            return None
        tables, scorer = self._scoring()
        x, mask, open_sources = new_item_rows(weights, tuple(self.sources_),
                                              int(tables.item.shape[2]), self.config,
                                              text_vector, attribute_row)
        bias = None
        if scorer.retrieval is not None:
            untrained = np.ones(int(tables.item.shape[0]), bool)
            untrained[np.asarray(self.seen_.indices, np.int64)] = False
            if untrained.any():
                values = scorer.retrieval.item_bias.detach().cpu().numpy()
                bias = float(values[untrained].mean())
        return ContentRows(x, mask, open_sources, bias)

    # -- forgetting ---------------------------------------------------------------------------
    def forget_user(self, user: int, split_after, changed_items: np.ndarray,
                    had_friends: bool) -> ForgetOutcome:
        """Zero ``user``'s rows, re-derive dependent rows (see the module doc); the model must
        be loaded from a run folder (its saved tables are what is edited)."""
        if getattr(self, "tables_", None) is None:
            raise ServableError("forget_user edits a saved fusion run; load it first")
        sources = list(self.sources_)
        t = self.tables_
        user_t, item_t = t.user.numpy(), t.item.numpy()  # (n, S, d), views: edits stick
        user_m, item_m = t.user_mask.numpy(), t.item_mask.numpy()  # (n, S)
        text = {k: np.array(v) for k, v in getattr(self, "text_vectors_", {}).items()}
        their_items = np.unique(self.seen_.items_of(user))
        user_t[user], user_m[user] = 0, False
        if "user" in text:
            text["user"][user] = 0
        users, items = training_pairs(split_after.features)
        recomputed = ["the user's rows of every source", "seen items"]
        if "user_attributes" in sources and len(their_items):
            s = sources.index("user_attributes")
            pick = np.isin(items, their_items)
            profile = _mean_over(items[pick], users[pick], user_t[:, s], len(item_t))
            mask = _mean_over(items[pick], users[pick], user_m[:, s, None].astype(np.float32),
                              len(item_t))[:, 0] > 0
            item_t[their_items, s] = profile[their_items]
            item_m[their_items, s] = mask[their_items]
            recomputed.append(f"user_attributes rows of the user's {len(their_items)} items")
        changed = np.asarray(changed_items, dtype=np.int64)
        if "item_text" in sources and len(changed):
            self._drop_item_text(text, sources.index("item_text"), changed, users, items)
            recomputed.append(f"item_text profiles of the users of {len(changed)} items whose "
                              "text quoted the user")
        if text:
            self.text_vectors_ = text
        self.seen_ = SeenItems.from_pairs(split_after.train, len(user_t))
        return ForgetOutcome(tuple(recomputed), self._needs_retrain(sources, had_friends),
                             len(changed) if "item_text" in sources else 0)

    def _drop_item_text(self, text: dict, s: int, changed: np.ndarray, users: np.ndarray,
                        items: np.ndarray) -> None:
        """Mask the text row of items whose text held the user's words, and take those rows out
        of every user profile that averaged them (profile = mean over the user's items)."""
        t = self.tables_
        user_t, item_t = t.user.numpy(), t.item.numpy()
        user_m, item_m = t.user_mask.numpy(), t.item_mask.numpy()
        old = np.zeros_like(item_t[:, s])
        old[changed] = item_t[changed, s]
        item_t[changed, s], item_m[changed, s] = 0, False
        if "item" in text:  # a fine-tuned LM's vectors of the old texts
            text["item"][changed] = 0
        text_user = self.config.text_user
        if text_user == "lm":  # no profile term: user rows never averaged item rows
            return
        pick = np.isin(items, changed)
        degree = np.bincount(users, minlength=len(user_t))
        delta = np.zeros_like(user_t[:, s])
        np.add.at(delta, users[pick], old[items[pick]])
        touched = np.unique(users[pick])
        user_t[touched, s] -= delta[touched] / degree[touched][:, None]
        if text_user == "profile":  # availability = any of the user's items still has text
            has = np.zeros(len(user_t), dtype=np.int64)
            np.add.at(has, users, item_m[items, s].astype(np.int64))
            user_m[touched, s] = has[touched] > 0

    def _needs_retrain(self, sources: list[str], had_friends: bool) -> tuple[str, ...]:
        out = []
        if "interactions" in sources:
            out.append("interactions: LightGCN propagation over the user's edges shaped the "
                       "rows of their items and of users within two hops")
        if "social" in sources and had_friends:
            out.append("social: propagation shaped their friends' and items' social rows")
        if getattr(self, "text_lm_", None) is not None:
            out.append("lm: the fine-tuned language model trained on the user's texts")
        out.append("weights: embeddings, fusion layers and heads trained on the user's "
                   "examples")
        return tuple(out)

    # -- warm start -------------------------------------------------------------------------
    def check_parent(self, weights: Mapping[str, Any]) -> None:
        """Refuse a checkpoint whose scorer differs from this (loaded) model's."""
        import torch

        _, scorer = self._scoring()
        for name, value in scorer.state_dict().items():
            saved = weights.get(f"scorer.{name}")
            if saved is None or saved.shape != value.shape or not torch.equal(saved, value):
                raise ServableError(f"the checkpoint's scorer.{name} differs from the run's "
                                    "model; the checkpoint does not belong to this model")

    def warm_start(self, module, weights: Mapping[str, Any], parent_features, features,
                   seen: SeenItems) -> dict[str, int]:
        counts = warm_state(module, weights, ROW_KEYS, parent_features, features)
        self.seen_ = seen
        return counts

    # -- the DP head --------------------------------------------------------------------------
    def head_inputs(self) -> HeadInputs:
        from fusionrec.models.fusion.model import FusionScorer

        tables, _ = self._scoring()
        cfg = self.config
        scorer = FusionScorer(len(self.sources_), cfg.embedding_dim, tables.item.shape[0],
                              cfg.fusion, cfg.source_dropout, self.heads_, cfg.hidden,
                              cfg.mlp_dropout)
        return HeadInputs(tables, scorer, self.seen_, int(tables.item.shape[0]))

    def replace_head(self, scorer) -> None:
        if getattr(self, "tables_", None) is not None:  # a loaded model scores with scorer_
            self.scorer_ = scorer
        else:
            self.module_.scorer = scorer
