"""Cheap per-row features for the hybrid head, computed from a row's history and item texts.

Columns (each optional, see ``CrossEncoderConfig.side_features``):

- ``positivity``: ``log((liked + 1) / (disliked + 1))`` over the row's history: the
  history-positivity rule, and the head's prior (weight 1 at the start).
- ``recent_positivity``: the same over the 3 most recent history entries.
- ``similarity``: with unit item-text embeddings from the frozen feature encoder, the mean
  cosine of the candidate to the liked history minus that to the disliked history, and the
  signed mean ``sum cos * (+1 liked / -1 disliked) / n`` (2 columns).
- ``quality``: cosine of the candidate's text to a "much loved" probe text minus that to a
  "forgettable" one: what the language model itself knows about the item, no ratings used.
- ``item_numeric``: the item's numeric attributes (e.g. release year), standardised over the
  catalogue.
- ``item_categories``: multi-hot of the item's categorical attributes (e.g. genres).
- ``category_affinity``: ``log`` ratio of liked to disliked history items sharing a category
  with the candidate.
- ``shot_prior``: smoothed like-rate of the candidate among the *training* rows' targets and
  histories (only the k labelled records in few-shot), counting each (user, item) once; a
  training row never counts its own (user, item).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fusionrec.models.common.history import RowHistory

#: Prior pseudo-count of the shot prior's smoothing towards the overall like-rate.
SHOT_PRIOR_STRENGTH = 5.0
#: Categorical columns with more distinct values than this are not one-hot encoded.
MAX_CATEGORIES = 64
SIDE_TEXT_VERSION = "cross-encoder-item-1"


def _log_ratio(liked: np.ndarray, disliked: np.ndarray, pseudo: float) -> np.ndarray:
    return np.log((liked + pseudo) / (disliked + pseudo))


@dataclass(frozen=True)
class SideTables:
    """Per-item tables the features read (saved with the model)."""

    item_vectors: np.ndarray   # (n_items, d) unit rows, or (n_items, 0) when unused
    quality: np.ndarray        # (n_items,)
    numeric: np.ndarray        # (n_items, m) standardised, NaN -> 0
    categories: np.ndarray     # (n_items, c) 0/1
    shot_pos: np.ndarray       # (n_items,) liked (user, item) pairs among training rows
    shot_cnt: np.ndarray       # (n_items,) (user, item) pairs among training rows

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {f"side.{k}": np.ascontiguousarray(v, dtype=np.float32)
                for k, v in self.__dict__.items()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "SideTables":
        return cls(**{k[len("side."):]: v for k, v in arrays.items() if k.startswith("side.")})


def numeric_table(item_attributes, n_items: int) -> np.ndarray:
    """Numeric item attribute columns, standardised over the catalogue (missing -> mean)."""
    out = []
    for column in _columns(item_attributes).values():
        if column.dtype.kind not in "fiu":
            continue
        values = column.astype(np.float64)
        if np.all(np.isnan(values)):
            continue
        std = np.nanstd(values)
        out.append(np.nan_to_num((values - np.nanmean(values)) / (std if std > 0 else 1.0)))
    return np.stack(out, axis=1).astype(np.float32) if out else np.zeros((n_items, 0), np.float32)


def category_table(item_attributes, n_items: int) -> tuple[np.ndarray, list[str]]:
    """Multi-hot of categorical (``|``-joined) item columns with few distinct values."""
    blocks, names = [], []
    for name, column in _columns(item_attributes).items():
        if column.dtype.kind in "fiu":
            continue
        values = [[v for v in str(x).split("|") if v] for x in column]
        vocab = sorted({v for row in values for v in row})
        if not vocab or len(vocab) > MAX_CATEGORIES:
            continue
        index = {v: j for j, v in enumerate(vocab)}
        block = np.zeros((n_items, len(vocab)), np.float32)
        for i, row in enumerate(values):
            block[i, [index[v] for v in row]] = 1.0
        blocks.append(block)
        names += [f"{name}={v}" for v in vocab]
    if not blocks:
        return np.zeros((n_items, 0), np.float32), []
    return np.concatenate(blocks, axis=1), names


def _columns(item_attributes) -> dict:
    if item_attributes is None or item_attributes.attributes is None:
        return {}
    return dict(item_attributes.attributes.columns)


def feature_names(features: tuple[str, ...], tables: SideTables,
                  category_names: list[str]) -> tuple[str, ...]:
    names: list[str] = []
    for f in features:
        if f == "similarity":
            names += ["similarity_gap", "similarity_signed"]
        elif f == "item_numeric":
            names += [f"item_numeric_{j}" for j in range(tables.numeric.shape[1])]
        elif f == "item_categories":
            names += [f"category:{c}" for c in category_names]
        else:
            names.append(f)
    return tuple(names)


def shot_pairs(users: np.ndarray, items: np.ndarray, labels: np.ndarray, history: RowHistory,
               n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``user * n_items + item`` keys of the training rows' targets and history
    entries, with their labels (consecutive records of a user repeat history entries)."""
    mask = history.mask
    row_users = np.broadcast_to(users[:, None], history.items.shape)[mask]
    keys = np.r_[users * n_items + items, row_users * n_items + history.items[mask]]
    liked = np.r_[labels, history.labels[mask]].astype(np.float32)
    keys, first = np.unique(keys, return_index=True)
    return keys, liked[first]


def own_shot_labels(users: np.ndarray, items: np.ndarray, keys: np.ndarray,
                    labels: np.ndarray, n_items: int) -> np.ndarray:
    """For each row, the label its own (user, item) contributes to the shot prior (NaN: none)."""
    wanted = users * n_items + items
    at = np.clip(np.searchsorted(keys, wanted), 0, max(len(keys) - 1, 0))
    found = (len(keys) > 0) & (keys[at] == wanted) if len(keys) else np.zeros(len(wanted), bool)
    return np.where(found, labels[at] if len(keys) else 0.0, np.nan)


def side_matrix(features: tuple[str, ...], tables: SideTables, items: np.ndarray,
                history: RowHistory, own_shot: np.ndarray | None = None) -> np.ndarray:
    """``(n_rows, n_features)`` float32. ``own_shot``: for training rows, the label their own
    (user, item) added to the shot prior (NaN where none), taken back out so no row reads its
    own answer."""
    mask = history.mask
    liked = (history.labels > 0.5) & mask
    disliked = ~liked & mask
    cols: list[np.ndarray] = []
    for f in features:
        if f == "positivity":
            cols.append(_log_ratio(liked.sum(1), disliked.sum(1), 1.0))
        elif f == "recent_positivity":
            rank = np.cumsum(mask[:, ::-1], axis=1)[:, ::-1]  # 1 = most recent valid entry
            recent = mask & (rank <= 3)
            cols.append(_log_ratio((liked & recent).sum(1), (disliked & recent).sum(1), 0.5))
        elif f == "similarity":
            vectors = tables.item_vectors
            cand = vectors[items]                                    # (n, d)
            hist = vectors[np.where(mask, history.items, 0)]         # (n, h, d)
            cos = np.einsum("nd,nhd->nh", cand, hist) * mask         # (n, h), 0 on blanks
            n_l, n_d = liked.sum(1), disliked.sum(1)
            mean_l = np.where(n_l > 0, (cos * liked).sum(1) / np.maximum(n_l, 1), 0.0)
            mean_d = np.where(n_d > 0, (cos * disliked).sum(1) / np.maximum(n_d, 1), 0.0)
            signed = (cos * np.where(liked, 1.0, -1.0)).sum(1) / np.maximum(mask.sum(1), 1)
            cols += [mean_l - mean_d, signed]
        elif f == "quality":
            cols.append(tables.quality[items])
        elif f == "item_numeric":
            cols += list(tables.numeric[items].T)
        elif f == "item_categories":
            cols += list(tables.categories[items].T)
        elif f == "category_affinity":
            cats = tables.categories
            share = np.einsum("nc,nhc->nh", cats[items],
                              cats[np.where(mask, history.items, 0)]) > 0     # (n, h)
            cols.append(_log_ratio((liked & share).sum(1), (disliked & share).sum(1), 0.5))
        elif f == "shot_prior":
            pos, cnt = tables.shot_pos[items].astype(np.float64), tables.shot_cnt[items]
            if own_shot is not None:
                known = ~np.isnan(own_shot)
                pos = pos - np.where(known, own_shot, 0.0)
                cnt = cnt - known
            base = float(tables.shot_pos.sum() / max(tables.shot_cnt.sum(), 1.0))
            base = min(max(base, 0.05), 0.95)
            rate = (pos + SHOT_PRIOR_STRENGTH * base) / (cnt + SHOT_PRIOR_STRENGTH)
            cols.append(np.log(rate / (1.0 - rate)))
    if not cols:
        return np.zeros((len(items), 0), dtype=np.float32)
    return np.stack([np.asarray(c, dtype=np.float64) for c in cols], axis=1).astype(np.float32)


def build_tables(features_dataset, item_texts, config, shot_keys: np.ndarray,
                 shot_labels: np.ndarray, progress: bool = False
                 ) -> tuple[SideTables, list[str], dict]:
    """Per-item tables; item texts are embedded by the frozen feature encoder (through the
    embedding cache). Returns ``(tables, category names, metadata)``."""
    n_items = features_dataset.n_items
    wanted = set(config.side_features)
    meta: dict = {}
    vectors = np.zeros((n_items, 0), np.float32)
    quality = np.zeros(n_items, np.float32)
    if wanted & {"similarity", "quality"}:
        from fusionrec.encoders.config import EncoderConfig
        from fusionrec.encoders.factory import build_encoder
        from fusionrec.encoders.features import encode_cached

        enc_config = EncoderConfig(model=config.feature_model or config.model, max_length=64,
                                   cache_dir=config.cache_dir, num_threads=config.num_threads)
        encoder = build_encoder(enc_config)
        if enc_config.model.startswith("hashing"):  # test encoder: cheaper than any cache
            vectors, stats = encoder.encode(list(item_texts)), {"texts": len(item_texts)}
        else:
            vectors, stats = encode_cached(list(item_texts), encoder,
                                           enc_config.resolved_cache_dir(), SIDE_TEXT_VERSION,
                                           progress)
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        probes = encoder.encode(list(config.quality_probes))
        probes = probes / np.maximum(np.linalg.norm(probes, axis=1, keepdims=True), 1e-12)
        raw = vectors @ probes[0] - vectors @ probes[1]
        quality = ((raw - raw.mean()) / (raw.std() or 1.0)).astype(np.float32)
        meta = {"feature_encoder": encoder.identity, "items": {k: v for k, v in stats.items()
                                                               if k != "cache_dir"}}
    if "similarity" not in wanted:
        vectors = np.zeros((n_items, 0), np.float32)
    attrs = features_dataset.item_attributes
    numeric = (numeric_table(attrs, n_items) if "item_numeric" in wanted
               else np.zeros((n_items, 0), np.float32))
    categories, names = (category_table(attrs, n_items)
                         if wanted & {"item_categories", "category_affinity"}
                         else (np.zeros((n_items, 0), np.float32), []))
    pos = np.zeros(n_items, np.float32)
    cnt = np.zeros(n_items, np.float32)
    if "shot_prior" in wanted and len(shot_keys):
        pos = np.bincount(shot_keys % n_items, shot_labels, minlength=n_items).astype(np.float32)
        cnt = np.bincount(shot_keys % n_items, minlength=n_items).astype(np.float32)
    tables = SideTables(vectors.astype(np.float32), quality, numeric, categories, pos, cnt)
    return tables, names, meta
