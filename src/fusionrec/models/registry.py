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
    "lm-zero-shot": "fusionrec.models.baselines.lm_zero_shot:LMZeroShot",
    "fusion": "fusionrec.models.fusion.recommender:FusionRecommender",
    # user→user link models (task "links", protocol links-random)
    "common-neighbours": "fusionrec.models.links.neighbours:CommonNeighbours",
    "adamic-adar": "fusionrec.models.links.neighbours:AdamicAdar",
    "friend-degree": "fusionrec.models.links.neighbours:FriendDegree",
    "lightgcn-links": "fusionrec.models.links.lightgcn_links:LightGCNLinks",
    "fusion-links": "fusionrec.models.fusion.links:FusionLinks",
}


def model_class(name: str):
    try:
        module_name, class_name = MODELS[name].split(":")
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {sorted(MODELS)}") from None
    return getattr(importlib.import_module(module_name), class_name)
