"""Content → collaborative linear map: ridge regression from an item's LM vector to the item
factors a collaborative model learned on the warm items, so that a cold item gets predicted
factors (the "map the content into the CF space" baseline of cold-start papers).

``fit`` does four things, none of them iterative:

1. encodes every item's text exactly as ``content-knn`` does
   (:func:`~fusionrec.models.baselines.content_knn.item_text_vectors`: the textualiser over
   ``split.features``, so a cold item's vector holds only its pre-interaction content);
2. factorises the binary training matrix by a rank-``embedding_dim`` truncated SVD
   (:func:`~fusionrec.models.baselines.ridge_map.svd_factors`). SVD rather than BPR-MF: it is
   closed form and deterministic (no sampling noise for the map to fit), costs one small
   eigendecomposition, and its factors are exactly what the issue's calibration mapped
   (0.256 NDCG@10 with 32 factors on ML-100K);
3. fits the ridge map from the LM vectors of the warm items (those with a training positive)
   to their SVD factors, along a grid of penalties ``lambdas``;
4. picks the penalty with the best NDCG@``k`` on the **valid** part: every valid user with a
   training positive ranks the valid candidates (the cold items of the valid part under
   ``rank_among: cold``, else every item) by mapped factors, training items excluded. The test
   part is never read.

Scores are ``user_factors[u] · item_factors[i]`` with the SVD factors for warm items and the
mapped ones for items with no training positive. User factors come from the interactions
alone, so a user with none (a cold user) has no factors: the model declares
``cold_start = {"items"}`` and, when no valid user has a training positive, ``fit`` raises
:class:`~fusionrec.data.split.ColdStartUnsupported` instead of choosing a penalty on noise.
Top-K only: there is no calibrated probability to give a CTR task.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from fusionrec.data.split import ColdStartUnsupported, Split
from fusionrec.models.baselines.content_knn import item_text_vectors
from fusionrec.models.baselines.cosine import unit_rows
from fusionrec.models.baselines.item_knn import user_item_matrix
from fusionrec.models.common.persist import load_model_files, save_model_files
from fusionrec.models.common.ranking import ScoreAllRanking, SeenItems
from fusionrec.models.baselines.ridge_map import RidgePath, mean_ndcg, svd_factors

ITEM_TEXT_SOURCES = ("interactions", "item_attributes", "item_text", "kg", "reviews")
DEFAULT_LAMBDAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)


@dataclass(frozen=True)
class ContentMapConfig:
    """``model.params`` of ``content-map``."""

    # LM encoder settings (the encoder section's keys); default: the run's encoder section,
    # else the bundled all-MiniLM-L6-v2
    encoder: Mapping[str, Any] | None = None
    embedding_dim: int = 32  # truncated-SVD factors of the warm items
    lambdas: tuple[float, ...] = DEFAULT_LAMBDAS  # ridge penalties tried, one chosen on valid
    k: int = 10  # the valid NDCG cut-off the penalty is chosen on


class ContentMap(ScoreAllRanking):
    """Parameters: ``encoder`` (an ``EncoderConfig`` or mapping, as for ``content-knn``);
    ``embedding_dim``: SVD factors; ``lambdas``: the ridge penalties tried; ``k``: the valid
    NDCG cut-off the penalty is chosen on. :meth:`set_item_vectors` supplies precomputed item
    vectors instead of encoding."""

    name: ClassVar[str] = "content-map"
    # Cold items get mapped factors; a user's factors need the user's interactions.
    cold_start: ClassVar[frozenset[str]] = frozenset({"items"})
    TASKS: ClassVar[tuple[str, ...]] = ("topk",)
    SMOKE_PARAMS: ClassVar[dict] = {"encoder": {"model": "hashing:32"}, "embedding_dim": 8}

    def __init__(self, encoder=None, embedding_dim: int = 32,
                 lambdas: Sequence[float] = DEFAULT_LAMBDAS, k: int = 10) -> None:
        from fusionrec.encoders.config import EncoderConfig

        if encoder is None or isinstance(encoder, EncoderConfig):
            self.encoder = encoder or EncoderConfig()
        else:
            self.encoder = EncoderConfig.from_dict(dict(encoder))
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
        lambdas = tuple(float(x) for x in lambdas)
        if not lambdas or any(not np.isfinite(x) or x < 0 for x in lambdas):
            raise ValueError(f"lambdas must be a non-empty list of numbers >= 0, got {lambdas}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.embedding_dim, self.lambdas, self.k = int(embedding_dim), lambdas, int(k)
        self.item_vectors = None

    def used_sources(self) -> tuple[str, ...]:
        return tuple(getattr(self, "sources_", ()))  # those the fitted data held

    def get_params(self) -> dict[str, Any]:
        return {"encoder": self.encoder.to_dict(), "embedding_dim": self.embedding_dim,
                "lambdas": list(self.lambdas), "k": self.k}

    def set_item_vectors(self, vectors: np.ndarray) -> "ContentMap":
        """Use these ``(n_items, d)`` item vectors rather than encoding the split's texts."""
        self.item_vectors = np.asarray(vectors, dtype=np.float32)
        return self

    def _vectors(self, features) -> np.ndarray:
        if self.item_vectors is not None:
            vectors = self.item_vectors
        elif features.item_text is None and features.item_attributes is None \
                and features.kg is None:
            raise ValueError(f"content-map needs item text (item_text, item_attributes or kg), "
                             f"but dataset {features.name!r} has none")
        else:
            vectors = item_text_vectors(features, self.encoder)
        if vectors.shape[0] != features.n_items:
            raise ValueError(f"content-map: {vectors.shape[0]} item vectors for "
                             f"{features.n_items} items")
        return unit_rows(vectors)  # (n_items, d): the cosine geometry content-knn uses

    def fit(self, split: Split) -> "ContentMap":
        if split.task != "topk":
            raise ValueError(f"content-map ranks items (top-K); split {split.protocol!r} is a "
                             f"{split.task} task")
        features = split.features
        n_users, n_items = features.n_users, features.n_items
        vectors = self._vectors(features)
        self.seen_ = SeenItems.from_pairs(split.train, n_users)
        matrix = user_item_matrix(self.seen_, n_items).tocsc()         # (n_users, n_items) 0/1
        warm = np.diff(matrix.indptr) > 0                                # items with a positive
        if warm.sum() < 2:
            raise ValueError("content-map needs at least two items with a training positive")
        users, warm_factors = svd_factors(matrix[:, warm], self.embedding_dim)
        path = RidgePath.fit(vectors[warm], warm_factors)
        self.valid_ndcg_ = self._valid_scores(split, users, vectors, path)
        self.penalty_ = self.lambdas[int(np.argmax(self.valid_ndcg_))]  # first best on ties
        items = path.predict(vectors, self.penalty_)                     # (n_items, r) mapped
        items[warm] = warm_factors
        self.user_factors_, self.item_factors_ = users, items
        # what it reads: the interactions, and the item sources the item text is rendered from
        self.sources_ = tuple(s for s in features.sources if s in ITEM_TEXT_SOURCES)
        return self

    def _valid_scores(self, split: Split, users: np.ndarray, vectors: np.ndarray,
                      path: RidgePath) -> list[float]:
        """Valid NDCG@k of each penalty, ranking the valid candidates by mapped factors."""
        valid = split.valid.positives()
        candidates = split.cold.candidates("valid") if split.cold is not None else None
        candidates = np.arange(split.features.n_items) if candidates is None else candidates
        ranked = np.unique(valid.user)
        ranked = ranked[np.diff(self.seen_.indptr)[ranked] > 0]  # users with factors
        if len(valid) == 0 or len(ranked) == 0:
            raise ColdStartUnsupported(
                f"{self.name} cannot score cold users: no user of the valid part has a training "
                f"interaction, and its user factors come from interactions alone")
        column = np.full(split.features.n_items, -1, dtype=np.int64)
        column[candidates] = np.arange(len(candidates))
        row = np.searchsorted(ranked, valid.user)
        keep = (row < len(ranked)) & (ranked[np.minimum(row, len(ranked) - 1)] == valid.user) \
            & (column[valid.item] >= 0)
        relevant = np.zeros((len(ranked), len(candidates)))
        relevant[row[keep], column[valid.item[keep]]] = 1.0
        has = relevant.sum(axis=1) > 0
        found = []
        for penalty in self.lambdas:
            scores = users[ranked] @ path.predict(vectors[candidates], penalty).T  # (n, c)
            scores = scores.astype(np.float64)
            self._exclude_seen(scores, ranked, column)
            found.append(mean_ndcg(scores[has], relevant[has], self.k))
        return found

    def _exclude_seen(self, scores: np.ndarray, users: np.ndarray, column: np.ndarray) -> None:
        for row, user in enumerate(users):
            seen = column[self.seen_.items_of(user)]
            scores[row, seen[seen >= 0]] = -np.inf

    def _check_fitted(self) -> None:
        if not hasattr(self, "item_factors_"):
            raise RuntimeError("ContentMap is not fitted; call fit(split) first")

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        self._check_fitted()
        u, i = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        return np.einsum("nr,nr->n", self.user_factors_[u], self.item_factors_[i])

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """``(len(users), n_items)`` scores."""
        return self.user_factors_[np.asarray(users, dtype=np.int64)] @ self.item_factors_.T

    def save(self, directory: str | Path) -> Path:
        self._check_fitted()
        return save_model_files(directory, self.name, self.get_params(), {
            "user_factors": self.user_factors_, "item_factors": self.item_factors_,
            "seen_indptr": self.seen_.indptr, "seen_indices": self.seen_.indices},
            state={"penalty": self.penalty_, "valid_ndcg": list(self.valid_ndcg_),
                   "sources": list(self.sources_)})

    @classmethod
    def load(cls, directory: str | Path) -> "ContentMap":
        meta, tensors = load_model_files(directory, cls.name)
        model = cls(**meta["params"])
        model.user_factors_ = tensors["user_factors"]
        model.item_factors_ = tensors["item_factors"]
        model.seen_ = SeenItems(tensors["seen_indptr"], tensors["seen_indices"])
        model.penalty_, model.valid_ndcg_ = meta["state"]["penalty"], meta["state"]["valid_ndcg"]
        model.sources_ = tuple(meta["state"]["sources"])
        return model
