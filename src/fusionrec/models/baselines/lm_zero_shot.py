"""The untrained language model as a recommender: the "before fine-tuning" row of every report.

``score(u, i)`` is the cosine between the LM embedding of user ``u``'s text and that of item
``i``'s text, both from :func:`fusionrec.encoders.features.text_features` of ``split.features``
(the leak-free dataset: a user's text only ever holds training history). No weight of the LM
or of anything else is trained; ``fit`` is one encoding pass through the embedding cache.

On CTR splits ``calibrate`` fits a two-number Platt scale ``sigmoid(a cos + b)`` on the
validation rows (shared with the kNN baselines), so that threshold metrics (F1, accuracy,
log-loss) are meaningful; being increasing, it leaves AUC and every ranking unchanged.
"""

from __future__ import annotations

from typing import ClassVar

from fusionrec.data.split import Split
from fusionrec.models.baselines.cosine import CosineScorer


class LMZeroShot(CosineScorer):
    """Parameters as :class:`CosineScorer`. :meth:`set_text_features` supplies precomputed
    ``TextFeatures`` instead of encoding."""

    name: ClassVar[str] = "lm-zero-shot"

    def __init__(self, encoder=None, calibrate: bool = True) -> None:
        super().__init__(encoder, calibrate)
        self.text_features = None

    def set_text_features(self, features) -> "LMZeroShot":
        """Use these ``TextFeatures`` (``.user (n_users, d)``, ``.item (n_items, d)``)."""
        self.text_features = features
        return self

    def fit(self, split: Split) -> "LMZeroShot":
        features = split.features
        text = self.text_features
        if text is None:
            from fusionrec.encoders.features import text_features

            text = text_features(features, self.encoder, progress=False)
        if text.user.shape[0] != features.n_users or text.item.shape[0] != features.n_items:
            raise ValueError(f"lm-zero-shot: text features for {text.user.shape[0]} users / "
                             f"{text.item.shape[0]} items, split has {features.n_users} / "
                             f"{features.n_items}")
        # every source the textualisers read from split.features feeds the texts
        self._set_vectors(split, text.user, text.item)
        return self
