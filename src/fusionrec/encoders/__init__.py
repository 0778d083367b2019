"""Text encoders and the embedding cache.

- :func:`fusionrec.encoders.features.text_features` -> ``TextFeatures(user, item, meta)``: the
  one entry point models use.
- :class:`fusionrec.encoders.config.EncoderConfig`;
  :func:`~fusionrec.encoders.factory.build_encoder`
- :class:`~fusionrec.encoders.hf.HFEncoder` (BERT / GPT families, offline),
  :class:`~fusionrec.encoders.hashing.HashingEncoder` (tests only),
  :class:`~fusionrec.encoders.cache.EmbeddingCache`.

Kept import-free: torch and transformers load only when a model is actually used.
"""
