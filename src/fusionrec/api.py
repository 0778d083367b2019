"""The library's front door: a registered model, ready for ``fit(split)``.

Torch models train in the shared Trainer and validate with ``evaluate``, both of which sit in
layers above the models; :func:`make_model` hands them in, so ``model.fit(split)`` trains with
early stopping on the valid part exactly as ``fusionrec train`` does.
"""

from __future__ import annotations

from functools import partial


def make_model(name: str, **params):
    """Model ``name`` of :mod:`fusionrec.models.registry` built with ``params``; a torch model
    also gets the shared Trainer (validating with ``evaluate``) as its ``runner``, unless
    ``params`` names one."""
    from fusionrec.evaluation.evaluate import evaluate
    from fusionrec.models.base import TorchTrainable
    from fusionrec.models.registry import model_class
    from fusionrec.training.trainer import Trainer

    cls = model_class(name)
    if issubclass(cls, TorchTrainable):
        params.setdefault("runner", partial(Trainer, evaluate=evaluate))
    return cls(**params)
