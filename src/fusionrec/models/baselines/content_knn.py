"""Content kNN on language-model embeddings of item text.

Each item's text (textualised from ``split.features``, so only leak-free sources are read) is
encoded once through the embedding cache, exactly as
``fusionrec.encoders.features.text_features`` encodes items (same texts, same cache entries),
but without encoding user texts, which this model never reads; a user's profile is the mean of the
unit-normalised embeddings of the user's training items, and ``score(u, i)`` is the cosine
between the profile and item ``i``. Users without training items score 0 everywhere. No
gradient training: ``fit`` is one encoding pass (through the embedding cache) and one sparse
product. On CTR splits the cosine is mapped to a logit by Platt scaling on the validation rows
(see :func:`~fusionrec.models.baselines.item_knn.platt_scaling`).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from fusionrec.data.split import Split
from fusionrec.models.baselines.cosine import CosineScorer, unit_rows
from fusionrec.models.baselines.item_knn import user_item_matrix
from fusionrec.models.baselines.ranking import SeenItems
from fusionrec.models.params import MissingSourceError


def item_texts(features, config):
    """``(texts, textualiser)``: every item's text as this model (and the fusion model's text
    source) renders it from ``features`` for an encoder ``config``, in index order."""
    from fusionrec.text.items import ItemTextualiser
    from fusionrec.text.options import TextOptions

    textualiser = ItemTextualiser(features, TextOptions.for_max_length(config.max_length))
    return [textualiser.text(i) for i in range(features.n_items)], textualiser


def item_text_vectors(features, config, progress: bool = False) -> np.ndarray:
    """``(n_items, d)`` LM embeddings of the item texts of ``features`` (cached)."""
    from fusionrec.encoders.factory import build_encoder
    from fusionrec.encoders.features import encode_cached

    texts, textualiser = item_texts(features, config)
    vectors, _ = encode_cached(texts, build_encoder(config), config.resolved_cache_dir(),
                               textualiser.version, progress)
    return vectors


class ContentKNN(CosineScorer):
    """Parameters as :class:`CosineScorer`. :meth:`set_item_vectors` supplies precomputed item
    embeddings instead of encoding."""

    name: ClassVar[str] = "content-knn"
    # A cold item has text; a user without training items has no profile (scores 0).
    cold_start: ClassVar[frozenset[str]] = frozenset({"items"})

    def __init__(self, encoder=None, calibrate: bool = True) -> None:
        super().__init__(encoder, calibrate)
        self.item_vectors = None

    def set_item_vectors(self, vectors: np.ndarray) -> "ContentKNN":
        """Use these ``(n_items, d)`` item embeddings rather than encoding the split's texts."""
        self.item_vectors = np.asarray(vectors, dtype=np.float32)
        return self

    def fit(self, split: Split) -> "ContentKNN":
        features = split.features
        if self.item_vectors is not None:
            vectors = self.item_vectors
        else:
            if features.item_text is None and features.item_attributes is None \
                    and features.kg is None:
                raise MissingSourceError("content-knn needs item text (item_text, item_attributes "
                                         f"or kg), but dataset {features.name!r} has none")
            vectors = item_text_vectors(features, self.encoder)
        if vectors.shape[0] != features.n_items:
            raise ValueError(f"content-knn: {vectors.shape[0]} item vectors for "
                             f"{features.n_items} items")
        item_vectors = unit_rows(vectors)                                   # (n_items, d)
        seen = SeenItems.from_pairs(split.train, features.n_users)
        rating = user_item_matrix(seen, features.n_items)                   # (n_users, n_items) 0/1
        # a profile is the mean of the user's unit item vectors (normalised in _set_vectors)
        self._set_vectors(split, np.asarray(rating @ item_vectors), item_vectors)
        return self
