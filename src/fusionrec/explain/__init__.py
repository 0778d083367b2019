"""Why an item was recommended: KG paths, friends, shared attributes, source contributions.

One small provider per kind of evidence (``kg_paths``, ``friends``, ``attributes``,
``sources``), each built once from a dataset's training features and returning plain frozen
dataclasses (:mod:`fusionrec.explain.types`); :class:`~fusionrec.explain.explainer.Explainer`
runs them all. Items and users are dense indices here; the service maps them to raw ids.
"""
