"""Evaluation protocols: each turns a :class:`~fusionrec.data.schema.Dataset` into a
deterministic (by seed) :class:`~fusionrec.data.split.Split` whose ``features`` are leak-free.

Adding a protocol = one module exposing ``NAME``, ``TASK``, ``split(dataset, seed, **params)``
and ``features(dataset, train, valid, test)``, plus one line in :data:`PROTOCOLS`. Cold-start
protocols also expose ``cold(train, valid, test, params)``, the split's ``ColdStart``.

Protocols that do not draw their own shots also accept ``shots`` (and ``history``): k-shot
training, see :mod:`fusionrec.data.protocols.shots`.
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

from fusionrec.data.protocols._common import ProtocolError

#: protocol name -> module implementing it
PROTOCOLS: dict[str, str] = {
    "ctr-kgcn": "fusionrec.data.protocols.ctr_kgcn",
    "topk-random": "fusionrec.data.protocols.topk_random",
    "loo-temporal": "fusionrec.data.protocols.loo_temporal",
    "fewshot-tallrec": "fusionrec.data.protocols.fewshot_tallrec",
    "cold-items": "fusionrec.data.protocols.cold_items",
    "cold-users": "fusionrec.data.protocols.cold_users",
    "links-random": "fusionrec.data.protocols.links_random",
}

__all__ = ["PROTOCOLS", "ProtocolError", "derive_cold", "derive_features", "make_split",
           "protocol_module", "protocol_params", "protocol_task"]


def protocol_module(name: str) -> ModuleType:
    if name not in PROTOCOLS:
        raise ProtocolError(f"unknown protocol {name!r}; known protocols: {', '.join(PROTOCOLS)}")
    return importlib.import_module(PROTOCOLS[name])


def _own_params(name: str) -> dict:
    signature = inspect.signature(protocol_module(name).split)
    return {p.name: p.default for p in signature.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def protocol_params(name: str) -> dict:
    """The parameters a protocol accepts, with their defaults (``shots``/``history`` included:
    the protocol's own, else the generic k-shot ones)."""
    from fusionrec.data.protocols.shots import GENERIC_PARAMS

    own = _own_params(name)
    return own if "shots" in own else {**own, **GENERIC_PARAMS}


def protocol_task(name: str) -> str:
    """``"ctr"``, ``"topk"`` or ``"links"`` (user→user: ``Pairs.item`` holds a user)."""
    return protocol_module(name).TASK


def make_split(dataset, protocol: str, seed: int = 0, **params):
    """Split ``dataset`` with the named protocol; the same seed and params give the same split.

    ``split.params`` records every parameter (defaults included), so
    ``make_split(dataset, split.protocol, split.seed, **split.params)`` rebuilds it.
    """
    module = protocol_module(protocol)
    accepted = protocol_params(protocol)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ProtocolError(f"{protocol}: unknown parameter(s) {unknown}; "
                            f"accepted: {sorted(accepted) or 'none'}")
    if "shots" in _own_params(protocol):
        return module.split(dataset, int(seed), **params)
    from fusionrec.data.protocols.shots import GENERIC_PARAMS, apply_shots

    shots = params.pop("shots", None)
    history = params.pop("history", GENERIC_PARAMS["history"])
    if shots is None and history != GENERIC_PARAMS["history"]:
        raise ProtocolError(f"{protocol}: history={history!r} only applies with shots")
    split = module.split(dataset, int(seed), **params)
    return split if shots is None else apply_shots(dataset, split, module.features, shots,
                                                   history)


def derive_features(dataset, protocol: str, train, valid, test):
    """Re-derive a split's leak-free ``features`` from its parts (used to reload manifests)."""
    return protocol_module(protocol).features(dataset, train, valid, test)


def derive_cold(protocol: str, train, valid, test, params: dict):
    """Re-derive a split's ``ColdStart`` from its parts (None for warm protocols)."""
    rule = getattr(protocol_module(protocol), "cold", None)
    return None if rule is None else rule(train, valid, test, params)
