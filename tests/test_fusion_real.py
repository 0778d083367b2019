"""The fusion model on real Last.FM data (slow tier: ``pytest -m slow tests/test_fusion_real.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import shared_data_dir
from training_support import RUNNER

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ctr_split():
    from fusionrec.data.load import load_dataset
    from fusionrec.data.protocols import make_split

    dataset, _ = load_dataset("lastfm-kg", shared_data_dir())
    return make_split(dataset, "ctr-kgcn", seed=0)


def test_ctr_kgcn_beats_kgcn_and_popularity_without_text(ctr_split):
    """IDs + tags + friends + KG (no LM, so no model download or encode time)."""
    import torch

    from fusionrec.evaluation.evaluate import evaluate
    from fusionrec.models.fusion.recommender import FusionRecommender

    torch.set_num_threads(1)
    model = FusionRecommender(
        sources=["interactions", "item_attributes", "social", "kg"],
        trainer={"epochs": 12, "batch_size": 2048, "lr": 0.005, "patience": 3},
        runner=RUNNER).fit(ctr_split)
    metrics = evaluate(model, ctr_split, "test")
    popularity = np.bincount(ctr_split.train.positives().item,
                             minlength=ctr_split.features.n_items)
    from fusionrec.metrics import auc_score

    test = ctr_split.test
    assert metrics["auc"] > auc_score(test.label, popularity[test.item]) + 0.05
    assert metrics["auc"] > 0.85  # KGCN's published 0.796
    assert metrics["f1"] > 0.75  # KGCN's published 0.721
    weights = model.source_weights(test.user[:100], test.item[:100])
    np.testing.assert_allclose(weights.user.sum(1), 1.0, rtol=1e-5)
