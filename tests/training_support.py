"""What a torch model's ``fit`` runs in the tests: the shared Trainer, validating with the
evaluation layer's ``evaluate`` (handed in, as the layers require), without progress bars."""

from __future__ import annotations

import functools

from fusionrec.evaluation.evaluate import evaluate
from fusionrec.training.trainer import Trainer

RUNNER = functools.partial(Trainer, evaluate=evaluate, progress=False)


def build(cls, **params):
    """``cls(**params)``, handed :data:`RUNNER` when it is a torch model, so ``fit`` trains."""
    from fusionrec.models.base import TorchTrainable

    if issubclass(cls, TorchTrainable):
        params.setdefault("runner", RUNNER)
    return cls(**params)
