"""The fusion recommender (model name ``fusion``): one small module per job.

- per-source encoders: :mod:`id_encoder` (IDs + LightGCN), :mod:`text_encoder` (frozen LM
  vectors + adapter), :mod:`social_encoder`, :mod:`kg_encoder`, :mod:`attribute_encoder`
  (with :mod:`attribute_features`); shared graph operators in :mod:`sources`;
- :mod:`fusion` (concat / weighted / gated, source dropout), :mod:`heads` (CTR, retrieval),
  :mod:`losses`, composed in :mod:`model`;
- :mod:`build` (which sources, encoders from ``split.features``), :mod:`batches`,
  :mod:`config`, and :mod:`recommender` (the ``Recommender`` verbs, training, persistence).
"""
