"""Vectors for users and items the model never saw, from their attributes and text.

The run folder keeps per-source *tables*, not the encoders' weights, so the encoders are
recovered where they are linear:

- :class:`AttributeEmbedder`: an attribute source's native vector is ``bag @ E + numeric @ W``;
  ``E, W`` are re-fitted by ridge regression from the training rows' bags and stored vectors
  (exact up to the ridge when the bag has full column rank). With very many features (Last.FM's
  ~12k tags) each feature gets the centroid of the rows that carry it instead.
- :class:`TextMatcher`: a new text is encoded with the run's LM; it is mapped into the
  ``item_text`` source space by a ridge map fitted from the items' LM vectors to their stored
  vectors, and matched to the items whose LM vectors are closest (a pseudo-history for a new
  user who only wrote about themselves).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

_DENSE_LIMIT = 3000  # features; above it the normal equations get too large to solve densely


def _ridge(x: np.ndarray, y: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    gram = x.T @ x
    lam = ridge * max(np.trace(gram) / max(len(gram), 1), 1e-12)
    return np.linalg.solve(gram + lam * np.eye(len(gram)), x.T @ y)


class AttributeEmbedder:
    """Attribute dict (+ tags) -> a source vector, in the feature space of the training bags."""

    def __init__(self, attributes, tags, n_rows: int, vectors: np.ndarray | None = None,
                 has_rows: np.ndarray | None = None) -> None:
        from fusionrec.models.fusion.attribute_features import feature_bags

        columns = dict(attributes.columns) if attributes is not None else {}
        self.numeric = {name: _numeric_stats(np.asarray(col, dtype=np.float64))
                        for name, col in columns.items() if np.asarray(col).dtype.kind in "fiub"}
        self.numeric = {k: v for k, v in self.numeric.items() if v is not None}
        self.categorical = tuple(k for k in columns if np.asarray(columns[k]).dtype.kind
                                 not in "fiub")
        bags = feature_bags(attributes, tags, n_rows)
        self.features = {name: j for j, name in enumerate(bags.features)}
        self.tag_idf: dict[str, float] = {}
        if tags is not None and len(tags):
            doc_freq = np.bincount(np.unique(tags.item * len(tags.vocabulary) + tags.tag)
                                   % len(tags.vocabulary), minlength=len(tags.vocabulary))
            idf = np.log((1.0 + n_rows) / (1.0 + doc_freq)) + 1.0
            self.tag_idf = dict(zip(tags.vocabulary.ids, idf.tolist()))
        self.weights = None
        if vectors is None:  # the model does not fuse this source: validation only
            return
        rows = np.flatnonzero(has_rows)
        design = sp.hstack([bags.bag, sp.csr_matrix(bags.numeric)], format="csr")[rows]
        target = vectors[rows].astype(np.float64)
        if design.shape[1] <= _DENSE_LIMIT:
            self.weights = _ridge(design.toarray(), target).astype(np.float32)
        else:  # centroid of the rows carrying each feature, weighted by the bag
            mass = np.asarray(design.sum(axis=0)).ravel()
            self.weights = (np.asarray(design.T @ target) /
                            np.maximum(mass, 1e-12)[:, None]).astype(np.float32)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.categorical) + tuple(self.numeric)

    def check(self, attributes: Mapping[str, Any]) -> str | None:
        """Why ``attributes`` cannot be used (unknown column, wrong type), or ``None``."""
        for name, value in attributes.items():
            if name in self.numeric:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    return f"attribute {name!r} is numeric; got {value!r}"
            elif name in self.categorical:
                if not isinstance(value, str):
                    return f"attribute {name!r} takes a string ('a|b' for several); got {value!r}"
            else:
                return (f"unknown attribute {name!r}; known: {sorted(self.columns)}"
                        if self.columns else "this dataset has no attributes on this side")
        return None

    def embed(self, attributes: Mapping[str, Any], tags=()) -> np.ndarray | None:
        """The source vector of one row (through the re-fitted map), or ``None`` when
        nothing in it is known."""
        if self.weights is None:
            return None
        row = self.row(attributes, tags)
        return None if row is None else (row @ self.weights).astype(np.float32)

    @property
    def width(self) -> int:
        """Length of :meth:`row`: the bag's features, then the numeric block."""
        return len(self.features) + sum(2 if missing else 1
                                        for _, _, missing in self.numeric.values())

    def row(self, attributes: Mapping[str, Any], tags=()) -> np.ndarray | None:
        """One row's feature bag and standardised numeric block, laid out as the training
        rows' (``feature_bags``), or ``None`` when nothing in it is known."""
        weights = np.zeros(self.width, dtype=np.float64)
        blocks = 0
        for name in self.categorical:
            parts = [p.strip() for p in str(attributes.get(name) or "").split("|") if p.strip()]
            known = [self.features[f"{name}={p}"] for p in parts if f"{name}={p}" in self.features]
            if known:
                weights[known] += 1.0 / len(known)
                blocks += 1
        known_tags = [(self.features[f"tag:{t}"], self.tag_idf[t]) for t in dict.fromkeys(tags)
                      if f"tag:{t}" in self.features]
        if known_tags:
            total = sum(w for _, w in known_tags)
            for j, w in known_tags:
                weights[j] += w / total
            blocks += 1
        if blocks:
            weights /= blocks
        offset = len(self.features)
        numeric_known = False
        for name, (mean, std, has_missing) in self.numeric.items():
            value = attributes.get(name)
            missing = value is None
            if not missing:
                weights[offset] = (float(value) - mean) / std
                numeric_known = True
            offset += 1
            if has_missing:
                weights[offset] = float(missing)
                offset += 1
        if not blocks and not numeric_known:
            return None
        return weights


def _numeric_stats(x: np.ndarray):
    """``(mean, std, has_missing)`` as ``feature_bags`` standardises a numeric column."""
    missing = np.isnan(x)
    if missing.all():
        return None
    std = x[~missing].std()
    return float(x[~missing].mean()), float(std if std > 0 else 1.0), bool(missing.any())


class TextMatcher:
    """New text -> nearest items in LM space, and -> an ``item_text`` source vector."""

    def __init__(self, encoder, item_lm: np.ndarray, item_text_vectors: np.ndarray) -> None:
        self.encoder = encoder
        lm = np.asarray(item_lm, dtype=np.float32)
        norms = np.linalg.norm(lm, axis=1, keepdims=True)
        self.has_text = norms[:, 0] > 0
        self.item_lm = lm / np.maximum(norms, 1e-12)
        design = np.hstack([lm, np.ones((len(lm), 1), np.float32)])[self.has_text]
        self.map = _ridge(design.astype(np.float64),
                          item_text_vectors[self.has_text].astype(np.float64)).astype(np.float32)

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self.encoder.encode([text]), dtype=np.float32)[0]

    def nearest(self, lm: np.ndarray, m: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``m`` items whose LM vectors are most cosine-similar to ``lm``."""
        query = lm / max(float(np.linalg.norm(lm)), 1e-12)
        sims = self.item_lm @ query
        sims[~self.has_text] = -np.inf
        m = min(m, int(self.has_text.sum()))
        top = np.argpartition(-sims, m - 1)[:m] if m else np.zeros(0, np.int64)
        top = top[np.argsort(-sims[top])]
        return top.astype(np.int64), sims[top]

    def item_vector(self, lm: np.ndarray) -> np.ndarray:
        return (np.append(lm, 1.0).astype(np.float32) @ self.map).astype(np.float32)
