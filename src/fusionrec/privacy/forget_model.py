"""Removing one user from a saved ``fusion`` model, and re-deriving the rows that depended on
them in closed form.

A saved fusion model is per-source user and item tables plus the fusion/heads weights. Some
rows are plain averages over the training graph and can be recomputed exactly without the
user: an item's ``user_attributes`` row (the mean of its users' attribute vectors) and a
user's ``item_text`` profile (the mean of their items' text vectors). Rows shaped by *trained*
propagation (``interactions``, ``social``) and the weights themselves cannot: those are listed
in ``needs_retrain`` (``fusionrec forget --retrain`` retrains without the user).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusionrec.models.common.persist import load_model_files, save_model_files
from fusionrec.models.common.ranking import SeenItems


@dataclass(frozen=True)
class ModelForget:
    recomputed: tuple[str, ...]     # what was re-derived exactly
    masked_items: int               # items whose text row was dropped (it quoted the user)
    needs_retrain: tuple[str, ...]  # what still carries the user's influence


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


def forget_fusion_user(run_dir: str | Path, user: int, split_after, changed_items: np.ndarray,
                       had_friends: bool) -> ModelForget:
    """Zero ``user``'s rows in ``run_dir``'s model, re-derive dependent rows, rewrite it.

    ``split_after`` is the split without the user; ``changed_items`` the items whose text
    changed when the user's reviews and tags left it."""
    meta, tensors = load_model_files(run_dir, "fusion")
    tensors = {name: np.array(value) for name, value in tensors.items()}  # writable copies
    sources, params = list(meta["state"]["sources"]), meta["params"]
    user_t, item_t = tensors["tables.user"], tensors["tables.item"]  # (n, S, d)
    user_m, item_m = tensors["tables.user_mask"], tensors["tables.item_mask"]  # (n, S)
    old_seen = SeenItems(tensors["seen_indptr"], tensors["seen_indices"])
    their_items = np.unique(old_seen.items_of(user))
    user_t[user], user_m[user] = 0, 0
    if "text.user" in tensors:
        tensors["text.user"][user] = 0
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
        _drop_item_text(tensors, sources.index("item_text"), changed, users, items,
                        params.get("text_user", "profile"))
        recomputed.append(f"item_text profiles of the users of {len(changed)} items whose "
                          "text quoted the user")
    seen = SeenItems.from_pairs(split_after.train, len(user_t))
    tensors["seen_indptr"], tensors["seen_indices"] = seen.indptr, seen.indices
    save_model_files(run_dir, "fusion", params, tensors, meta["state"])
    return ModelForget(tuple(recomputed), len(changed) if "item_text" in sources else 0,
                       _needs_retrain(sources, had_friends, Path(run_dir)))


def _drop_item_text(tensors: dict, s: int, changed: np.ndarray, users: np.ndarray,
                    items: np.ndarray, text_user: str) -> None:
    """Mask the text row of items whose text held the user's words, and take those rows out
    of every user profile that averaged them (profile = mean over the user's items)."""
    user_t, item_t = tensors["tables.user"], tensors["tables.item"]
    user_m, item_m = tensors["tables.user_mask"], tensors["tables.item_mask"]
    old = np.zeros_like(item_t[:, s])
    old[changed] = item_t[changed, s]
    item_t[changed, s], item_m[changed, s] = 0, 0
    if "text.item" in tensors:  # a fine-tuned LM's vectors of the old texts
        tensors["text.item"][changed] = 0
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


def _needs_retrain(sources: list[str], had_friends: bool, run_dir: Path) -> tuple[str, ...]:
    out = []
    if "interactions" in sources:
        out.append("interactions: LightGCN propagation over the user's edges shaped the rows "
                   "of their items and of users within two hops")
    if "social" in sources and had_friends:
        out.append("social: propagation shaped their friends' and items' social rows")
    if (run_dir / "lm").is_dir():
        out.append("lm: the fine-tuned language model trained on the user's texts")
    out.append("weights: embeddings, fusion layers and heads trained on the user's examples")
    return tuple(out)
