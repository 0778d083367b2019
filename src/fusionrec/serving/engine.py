"""``Engine``: one loaded run of a servable model (:mod:`fusionrec.models.servable`: fusion,
LightGCN, BPR-MF), ready to answer requests, that learns from new events.

The model is reached only through its servable contract: per-source vector tables and a
scorer. At load every item and user vector is fused once and the items go into a FAISS index; a
request is then a lookup, one inner-product search and (CTR models) a re-rank of the
candidates by the model's head. Writes (:mod:`fusionrec.serving.updates`) only replace
per-user *views* and append new items, so readers never lock: they read one published
reference at a time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusionrec.errors import FusionRecError
from fusionrec.models.servable import Servable
from fusionrec.serving.catalog import GrowingVocabulary, item_names
from fusionrec.serving.index import ItemIndex, augment_users, unit
from fusionrec.serving.vectors import FoldIn, UserState, profiles
from fusionrec.serving.views import ItemTable, RequestError, UserView

log = logging.getLogger(__name__)


class EngineError(FusionRecError, RuntimeError):
    """The run folder cannot be served (a model without the servable contract)."""


@dataclass(frozen=True)
class LoadedRun:
    run_dir: Path
    config: object
    manifest: dict
    model: object
    dataset: object   # the full dataset (vocabularies, names)
    features: object  # split.features: training interactions + leak-free side data


def load_run(run_dir: str | Path, data_dir: str | None = None) -> LoadedRun:
    from fusionrec.training.artifacts import open_run
    from fusionrec.training.run import load_run_split

    config, manifest, model = open_run(run_dir)
    dataset, split = load_run_split(run_dir, config, manifest, data_dir)
    return LoadedRun(Path(run_dir), config, manifest, model, dataset, split.features)


class Engine:
    """Recommend / score / similar over a :class:`LoadedRun` of a servable model."""

    def __init__(self, run: LoadedRun, candidates: int = 100, threads: int = 1,
                 text_cold_start: bool = True, index: str = "auto") -> None:
        model = run.model
        if not isinstance(model, Servable):
            raise EngineError(f"{run.run_dir} holds a {model.name!r} model, "
                              "which the service cannot serve (servable models: fusion, "
                              "lightgcn, bpr-mf)")
        self.run = run
        self.candidates = candidates
        tables = model.vector_tables()
        self.sources = tables.sources
        self.space = model.vector_scorer()
        self.seen = tables.seen
        self.user_x, self.user_mask = tables.user, tables.user_mask
        self.item_x, self.item_mask = tables.item, tables.item_mask
        n_items = len(self.item_x)
        self.item_bias = (self.space.item_bias if self.space.item_bias is not None
                          else np.zeros(n_items, np.float32))
        self.item_fused = _fuse_all(self.space, "item", self.item_x, self.item_mask)
        self.item_unit = unit(self.item_fused)
        self.user_profile = profiles(self.item_x, self.seen.indptr, self.seen.indices)
        self.user_fused = _fuse_all(self.space, "user", self.user_x, self.user_mask)
        self.user_query = augment_users(self.user_fused)
        self.foldin = FoldIn.fit(self.sources, self.user_x, self.user_profile)
        self.index = ItemIndex(self.item_fused, self.item_bias, threads, index)
        dataset = run.dataset
        self.rating_scale = rating_scale(dataset)
        self.users = GrowingVocabulary(dataset.users.ids)
        self.items = GrowingVocabulary(dataset.items.ids, item_names(dataset))
        self.extra_items = ItemTable.empty(len(self.sources), self.item_x.shape[2],
                                           self.item_fused.shape[1])
        self.views: dict[int, UserView] = {}
        from fusionrec.serving.updates import Updater  # builds cold-start helpers

        self.updater = Updater(self, text_cold_start)
        from fusionrec.explain.explainer import Explainer

        self.explainer = Explainer.from_dataset(run.features, self.space)
        log.info("engine: %d users, %d items, sources %s, fold-in fit r2 %s", len(self.users),
                 len(self.items), list(self.sources),
                 {k: round(v, 3) for k, v in self.foldin.fit_r2.items()})

    # -- lookups ----------------------------------------------------------------------------
    def user_index(self, raw: str) -> int:
        from fusionrec.training.align import is_tombstone

        found = self.users.get(raw)
        if found is None or is_tombstone(raw):  # a forgotten user's empty slot
            raise RequestError(404, f"unknown user {raw!r}")
        return found

    def item_index(self, raw: str) -> int:
        found = self.items.get(raw)
        if found is None:
            raise RequestError(404, f"unknown item {raw!r}")
        return found

    def user_view(self, user: int) -> UserView:
        view = self.views.get(user)
        if view is not None:
            return view
        seen = self.seen.items_of(user)
        state = UserState(self.user_x[user], self.user_mask[user], self.user_profile[user],
                          len(seen))
        return UserView(state, self.user_fused[user], self.user_query[user], seen, seen)

    def item_rows(self, items: np.ndarray):
        """``(x (n, S, d), mask (n, S), fused (n, D), bias (n,))`` of base or new items."""
        items = np.asarray(items, dtype=np.int64)
        n_base, extra = len(self.item_x), self.extra_items
        if not len(items) or items.max() < n_base:
            return (self.item_x[items], self.item_mask[items], self.item_fused[items],
                    self.item_bias[items])
        base = items < n_base
        parts = []
        for table_base, table_extra in ((self.item_x, extra.x), (self.item_mask, extra.mask),
                                        (self.item_fused, extra.fused),
                                        (self.item_bias, extra.bias)):
            out = np.empty((len(items),) + table_base.shape[1:], table_base.dtype)
            out[base] = table_base[items[base]]
            out[~base] = table_extra[items[~base] - n_base]
            parts.append(out)
        return tuple(parts)

    # -- reads ------------------------------------------------------------------------------
    def recommend(self, user: int, k: int = 10,
                  exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` ``(items, scores)`` for ``user``: FAISS candidates, re-ranked."""
        view = self.user_view(user)
        extra = self.extra_items
        excluded = view.excluded if exclude_seen else np.zeros(0, np.int64)
        # Candidates beyond k only matter when a CTR head re-orders them; for a retrieval
        # head the index's exact scores already are the model's scores.
        wanted = max(self.candidates, k) if self.space.has_ctr else k
        ids, scores = self.index.top(view.query, wanted + len(excluded))
        if len(extra.bias):  # new items the model could place (some source gave a vector)
            placed = np.flatnonzero(extra.mask.any(1))
            ids = np.concatenate([ids, len(self.item_x) + placed])
            scores = np.concatenate([scores, extra.fused[placed] @ view.fused
                                     + extra.bias[placed]])
        if len(excluded):  # ``excluded`` is sorted: a binary search beats np.isin's sort
            at = np.minimum(np.searchsorted(excluded, ids), len(excluded) - 1)
            keep = excluded[at] != ids
            ids, scores = ids[keep], scores[keep]
        order = np.argsort(-scores, kind="stable")[:wanted]
        ids, scores = ids[order], scores[order]
        if self.space.has_ctr and len(ids):
            _, _, fused, bias = self.item_rows(ids)
            scores = self.space.pair_scores(view.fused, fused, bias)
            order = np.argsort(-scores, kind="stable")
            ids, scores = ids[order], scores[order]
        return ids[:k], scores[:k].astype(np.float64)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The model's score (CTR logit, else retrieval score) of each (user, item) pair."""
        out = np.empty(len(users), dtype=np.float64)
        _, mask, fused, bias = self.item_rows(items)
        for row, item in enumerate(np.asarray(items, np.int64)):
            if item >= len(self.item_x) and not mask[row].any():  # a new item, unplaced
                self._refuse_unplaced(int(item))
        for row, user in enumerate(users):
            view = self.user_view(int(user))
            out[row] = self.space.pair_scores(view.fused, fused[row:row + 1],
                                              bias[row:row + 1])[0]
        return out

    def similar(self, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items whose fused vectors are closest (cosine) to ``item``'s. A new item
        the model has no vector for (no source it could use: text without text cold start,
        no attributes) is refused rather than answered with arbitrary items at 0.0."""
        _, mask, fused, _ = self.item_rows(np.array([item]))
        if not mask[0].any():
            self._refuse_unplaced(item)
        ids, sims = self.index.similar(fused[0], k + 1)
        extra = self.extra_items
        if len(extra.bias):
            ids = np.concatenate([ids, len(self.item_x) + np.arange(len(extra.bias))])
            sims = np.concatenate([sims, unit(extra.fused) @ unit(fused[0])])
        keep = ids != item
        ids, sims = ids[keep], sims[keep]
        order = np.argsort(-sims, kind="stable")[:k]
        return ids[order], sims[order].astype(np.float64)

    def _refuse_unplaced(self, item: int) -> None:
        """409 for an item the model has no vector for: a new item posted without anything
        this run can place it from (no text it can encode, no known attributes or tags; a
        pure ID model places no new item before a retrain)."""
        if self.run.model.serving.content_items:
            how = "no text it can encode, no known attributes or tags"
        else:
            how = f"a {self.run.model.name} model places new items only after a retrain"
        raise RequestError(409, f"item {self.items.ids[item]!r} has no vector to compare "
                           f"yet: this run cannot place it from what was posted ({how})")

    def explain(self, user: int, items: np.ndarray):
        """One :class:`~fusionrec.explain.types.Explanation` per item, for ``user``."""
        view = self.user_view(user)
        x, mask, _, bias = self.item_rows(items)
        friends = self.updater.friends_of(user)
        history_of = lambda friend: self.user_view(friend).history  # noqa: E731
        return self.explainer.explain_many(items, view.history, friends, history_of,
                                           (view.state.x, view.state.mask), (x, mask, bias))

    def describe(self) -> dict:
        return {"model": self.run.model.name, "sources": list(self.sources),
                "heads": list(self.run.model.serving.heads),
                "users": len(self.users), "items": len(self.items),
                "new_users": len(self.users) - self.users.n_base,
                "new_items": len(self.items) - self.items.n_base,
                "updated_users": len(self.views), "foldin_r2": self.foldin.fit_r2,
                "index": self.index.kind,
                "text_cold_start": self.updater.matcher is not None}


#: The scale of rating events when the run's dataset holds no ratings.
DEFAULT_RATING_SCALE = (1.0, 5.0)


def rating_scale(dataset) -> tuple[float, float]:
    """``(lowest, highest)`` rating a posted event may carry: the dataset's own rating range
    (e.g. 0.5..4 for data rated so), else :data:`DEFAULT_RATING_SCALE`."""
    ratings = getattr(dataset.interactions, "rating", None)
    if ratings is None or not len(ratings):
        return DEFAULT_RATING_SCALE
    finite = ratings[np.isfinite(ratings)]
    if not len(finite):
        return DEFAULT_RATING_SCALE
    return float(finite.min()), float(finite.max())


def _fuse_all(space, side: str, x: np.ndarray, mask: np.ndarray,
              batch: int = 8192) -> np.ndarray:
    parts = [space.fuse(side, x[s:s + batch], mask[s:s + batch]) for s in range(0, len(x), batch)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 0), np.float32)
