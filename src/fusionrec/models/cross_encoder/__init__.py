"""Cross-encoder: a language model fine-tuned on fused (user context, candidate) prompts.

``recommender.CrossEncoderRecommender`` is the entry point (registry name ``cross-encoder``);
``config`` holds its settings, ``prompts`` builds the texts, ``side_features`` the hybrid
head's inputs, ``backbone`` loads the LM and applies the training mode, ``train`` runs the
loop, ``persist`` saves and loads. Nothing heavy is imported here.
"""
