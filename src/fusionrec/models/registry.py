"""Model names → classes. Adding a model is one line here; classes are imported lazily."""

from __future__ import annotations

import importlib

MODELS: dict[str, str] = {
    "popularity": "fusionrec.models.baselines.popularity:Popularity",
    "bpr-mf": "fusionrec.models.baselines.bpr_mf:BPRMF",
    "cross-encoder": "fusionrec.models.cross_encoder.recommender:CrossEncoderRecommender",
    "cross-encoder-zero-shot":
        "fusionrec.models.cross_encoder.zero_shot_model:CrossEncoderZeroShot",
    "history-positivity": "fusionrec.models.baselines.history_positivity:HistoryPositivity",
    "item-knn": "fusionrec.models.baselines.item_knn:ItemKNN",
    "lightgcn": "fusionrec.models.baselines.lightgcn:LightGCN",
    "kgcn": "fusionrec.models.baselines.kg_baseline:KGCN",
    "content-knn": "fusionrec.models.baselines.content_knn:ContentKNN",
    "content-map": "fusionrec.models.baselines.content_map:ContentMap",
    "random": "fusionrec.models.baselines.random_scores:RandomScores",
    "lm-zero-shot": "fusionrec.models.baselines.lm_zero_shot:LMZeroShot",
    "fusion": "fusionrec.models.fusion.recommender:FusionRecommender",
}


def model_class(name: str):
    try:
        module_name, class_name = MODELS[name].split(":")
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {sorted(MODELS)}") from None
    return getattr(importlib.import_module(module_name), class_name)
