"""Model names → classes and their parameter dataclasses. Adding a model is one line in each
table; both are imported lazily (the parameter classes live in light modules, so validating a
config never imports torch)."""

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
    # user→user link models (task "links", protocol links-random)
    "common-neighbours": "fusionrec.models.links.neighbours:CommonNeighbours",
    "adamic-adar": "fusionrec.models.links.neighbours:AdamicAdar",
    "friend-degree": "fusionrec.models.links.neighbours:FriendDegree",
    "lightgcn-links": "fusionrec.models.links.lightgcn_links:LightGCNLinks",
    "fusion-links": "fusionrec.models.fusion.links:FusionLinks",
}

#: Model name → the frozen dataclass of its ``model.params`` (validated when a config loads).
PARAMS: dict[str, str] = {
    "popularity": "fusionrec.models.baselines.popularity:PopularityConfig",
    "bpr-mf": "fusionrec.models.baselines.bpr_mf:BPRMFConfig",
    "cross-encoder": "fusionrec.models.cross_encoder.config:CrossEncoderConfig",
    "cross-encoder-zero-shot": "fusionrec.models.cross_encoder.zero_shot:ZeroShotConfig",
    "history-positivity": "fusionrec.models.baselines.history_positivity:HistoryPositivityConfig",
    "item-knn": "fusionrec.models.baselines.item_knn:ItemKNNConfig",
    "lightgcn": "fusionrec.models.baselines.lightgcn:LightGCNConfig",
    "kgcn": "fusionrec.models.baselines.kg_baseline:KGCNConfig",
    "content-knn": "fusionrec.models.baselines.cosine:CosineConfig",
    "lm-zero-shot": "fusionrec.models.baselines.cosine:CosineConfig",
    "fusion": "fusionrec.models.fusion.config:FusionConfig",
    "random": "fusionrec.models.baselines.random_scores:RandomConfig",
    "content-map": "fusionrec.models.baselines.content_map:ContentMapConfig",
    "common-neighbours": "fusionrec.models.links.params:NeighbourConfig",
    "adamic-adar": "fusionrec.models.links.params:NeighbourConfig",
    "friend-degree": "fusionrec.models.links.params:NeighbourConfig",
    "lightgcn-links": "fusionrec.models.links.params:LightGCNLinksConfig",
    "fusion-links": "fusionrec.models.links.params:FusionLinksConfig",
}


def _load(path: str):
    module_name, class_name = path.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def params_class(name: str) -> type:
    """The parameter dataclass of model ``name``."""
    try:
        return _load(PARAMS[name])
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {sorted(MODELS)}") from None


def model_class(name: str):
    try:
        return _load(MODELS[name])
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {sorted(MODELS)}") from None
