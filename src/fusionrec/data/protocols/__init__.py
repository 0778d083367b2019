"""Evaluation protocols: each turns a :class:`~fusionrec.data.schema.Dataset` into a
deterministic (by seed) :class:`~fusionrec.data.split.Split` whose ``features`` are leak-free.

Adding a protocol = one module exposing ``NAME``, ``TASK``, ``split(dataset, seed, **params)``
and ``features(dataset, train, valid, test)``, plus one line in :data:`PROTOCOLS`.
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
}

__all__ = ["PROTOCOLS", "ProtocolError", "derive_features", "make_split", "protocol_module",
           "protocol_params", "protocol_task"]


def protocol_module(name: str) -> ModuleType:
    if name not in PROTOCOLS:
        raise ProtocolError(f"unknown protocol {name!r}; known protocols: {', '.join(PROTOCOLS)}")
    return importlib.import_module(PROTOCOLS[name])


def protocol_params(name: str) -> dict:
    """The parameters a protocol accepts, with their defaults."""
    signature = inspect.signature(protocol_module(name).split)
    return {p.name: p.default for p in signature.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def protocol_task(name: str) -> str:
    """``"ctr"`` or ``"topk"``."""
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
    return module.split(dataset, int(seed), **params)


def derive_features(dataset, protocol: str, train, valid, test):
    """Re-derive a split's leak-free ``features`` from its parts (used to reload manifests)."""
    return protocol_module(protocol).features(dataset, train, valid, test)
