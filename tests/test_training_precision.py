"""``trainer.precision``: bf16 autocast of training steps, fp32 sparse graph work under it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusionrec.config import TrainerConfig
from fusionrec.data.protocols import make_split
from fusionrec.data.synthetic import generate
from fusionrec.encoders.features import TextFeatures
from fusionrec.graph.adjacency import bipartite_adjacency
from fusionrec.models.fusion.recommender import FusionRecommender
from fusionrec.training.precision import training_autocast
from fusionrec.evaluation.evaluate import evaluate
from fusionrec.training.trainer import Trainer
from training_support import RUNNER


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def topk_split():
    return make_split(generate(n_users=80, n_items=50, n_interactions=1200, seed=3),
                      "topk-random", seed=0)


def test_precision_is_validated_and_bf16_autocasts_products_only():
    with pytest.raises(ValueError, match="trainer.precision"):
        TrainerConfig(precision="fp16")
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    with training_autocast("fp32"):
        assert (a @ b).dtype == torch.float32
    with training_autocast("bf16"):
        assert (a @ b).dtype == torch.bfloat16
        assert (a + 1).dtype == torch.float32  # element-wise work keeps its dtype


def test_sparse_propagation_stays_fp32_under_bf16_autocast():
    # Before: "addmm_out_sparse_csr_impl_mkl" not implemented for 'BFloat16'.
    users, items = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2])
    adjacency = bipartite_adjacency(users, items, 3, 3)
    dense = torch.randn(6, 4, requires_grad=True)
    expected = adjacency @ dense
    with training_autocast("bf16"):
        out = adjacency @ dense
        frozen = adjacency @ dense.detach()
    assert out.dtype == frozen.dtype == torch.float32
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    assert dense.grad is not None and torch.isfinite(dense.grad).all()


def _fit(split, precision: str) -> tuple[FusionRecommender, list[float]]:
    rng = np.random.default_rng(0)
    text = TextFeatures(user=rng.normal(size=(split.features.n_users, 12)),
                        item=rng.normal(size=(split.features.n_items, 12)))
    model = FusionRecommender(embedding_dim=16, hidden=[32], layers=1, social_layers=1,
                              retrieval_loss="full_softmax", temperature=1.0, runner=RUNNER)
    losses: list[float] = []
    config = TrainerConfig(epochs=8, batch_size=256, lr=0.02, patience=0, seed=0,
                           num_threads=1, precision=precision)
    Trainer(config, evaluate=evaluate,
            progress=False, callbacks=[lambda epoch, r: losses.append(r["train_loss"])]
            ).fit(model.set_text_features(text), split)
    return model, losses


def test_bf16_training_learns_what_fp32_training_learns(topk_split):
    from fusionrec.evaluation.evaluate import evaluate

    (fp32, loss32), (bf16, loss16) = _fit(topk_split, "fp32"), _fit(topk_split, "bf16")
    assert loss16[-1] < loss16[0] - 0.1  # it learns
    np.testing.assert_allclose(loss16, loss32, rtol=0.02)  # and tracks fp32 step for step
    scores = bf16.score_all(np.arange(5))
    assert scores.dtype == np.float32 and np.isfinite(scores).all()  # scoring stays fp32
    ndcg32 = evaluate(fp32, topk_split, "test")["ndcg@10"]
    ndcg16 = evaluate(bf16, topk_split, "test")["ndcg@10"]
    assert abs(ndcg16 - ndcg32) < 0.05
