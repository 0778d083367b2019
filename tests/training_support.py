"""What a torch model's ``fit`` runs in the tests: the shared Trainer, validating with the
evaluation layer's ``evaluate`` (handed in, as the layers require), without progress bars."""

from __future__ import annotations

import functools

from fusionrec.evaluation.evaluate import evaluate
from fusionrec.training.trainer import Trainer

RUNNER = functools.partial(Trainer, evaluate=evaluate, progress=False)
