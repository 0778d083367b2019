"""Model names → classes. Adding a model is one line here; classes are imported lazily."""

from __future__ import annotations

import importlib

MODELS: dict[str, str] = {
    "popularity": "fusionrec.models.baselines.popularity:Popularity",
    "bpr-mf": "fusionrec.models.baselines.bpr_mf:BPRMF",
}


def model_class(name: str):
    try:
        module_name, class_name = MODELS[name].split(":")
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {sorted(MODELS)}") from None
    return getattr(importlib.import_module(module_name), class_name)
