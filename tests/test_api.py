"""fusionrec.api.make_model: every registered model is built ready for ``fit(split)``."""

from __future__ import annotations

import pytest

from fusionrec.api import make_model
from fusionrec.models.base import TorchTrainable
from fusionrec.models.registry import MODELS


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registered_model_builds_and_torch_ones_get_the_trainer(name):
    model = make_model(name)
    assert model.name == name
    if isinstance(model, TorchTrainable):
        # the runner is the shared Trainer validating with evaluate (not left to fail in fit)
        assert model.runner.func.__name__ == "Trainer"
        assert model.runner.keywords["evaluate"].__module__ == "fusionrec.evaluation.evaluate"
