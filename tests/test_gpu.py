"""Device handling on a real CUDA GPU (marker ``gpu``; every test skips without one).

``pytest -m gpu tests/test_gpu.py`` (``benchmarks/gpu_check.py`` runs it first). The same
seeds on the CPU and the GPU draw the same batches, so one fp32 epoch lands on the same mean
loss up to float rounding (the kernels sum in other orders); scoring a model on the GPU ranks
like scoring it on the CPU; a GPU-trained model's files load on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusionrec.config import TrainerConfig
from fusionrec.data.protocols import make_split
from fusionrec.data.synthetic import generate
from fusionrec.evaluation.evaluate import evaluate
from fusionrec.models.baselines.bpr_mf import BPRMF
from fusionrec.models.baselines.kg_baseline import KGCN
from fusionrec.models.baselines.lightgcn import LightGCN
from fusionrec.models.fusion.recommender import FusionRecommender
from fusionrec.training.trainer import Trainer
from test_cross_encoder import _params, tiny_lm  # noqa: F401  (fixture)
from test_cross_encoder import split as fewshot_split  # noqa: F401  (fixture)
from training_support import RUNNER

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

FUSION = {"embedding_dim": 16, "sources": "all", "layers": 2, "social_layers": 1,
          "hidden": [16], "source_dropout": 0.0,  # dropout draws differ per device's RNG
          "retrieval_loss": "full_softmax", "cosine_scale": 10,
          "encoder": {"model": "hashing:32"}}


@pytest.fixture(scope="module")
def topk():
    return make_split(generate(n_users=120, n_items=90, n_interactions=3000, seed=5),
                      "topk-random", seed=0)


@pytest.fixture(scope="module")
def ctr():
    return make_split(generate(n_users=120, n_items=90, n_interactions=3000, seed=5),
                      "ctr-kgcn", seed=0)


def _trainer(device: str, **changes) -> TrainerConfig:
    return TrainerConfig(**{"epochs": 1, "lr": 0.01, "batch_size": 256, "patience": 0,
                            "seed": 0, "precision": "fp32", "device": device, **changes})


def _fit(model, split, **changes):
    trainer = Trainer(model.trainer, evaluate=evaluate, progress=False, **changes)
    trainer.fit(model, split)
    return trainer


def test_fusion_topk_epoch_on_cuda_matches_the_cpu_loss(topk):
    losses = {}
    for device in ("cpu", "cuda"):
        model = FusionRecommender(trainer=_trainer(device), **FUSION, runner=RUNNER)
        losses[device] = _fit(model, topk).summary_.history[0]["train_loss"]
        assert next(model.module_.parameters()).device.type == device
    assert losses["cuda"] == pytest.approx(losses["cpu"], rel=2e-3)


def test_bf16_autocast_trains_on_cuda(topk):
    model = FusionRecommender(trainer=_trainer("cuda", precision="auto"), **FUSION, runner=RUNNER)
    loss = _fit(model, topk).summary_.history[0]["train_loss"]
    assert np.isfinite(loss)


def test_evaluation_on_cuda_equals_the_cpu(topk):
    model = FusionRecommender(trainer=_trainer("cpu", epochs=2), **FUSION, runner=RUNNER)
    _fit(model, topk)
    on_cpu = evaluate(model, topk, "test")
    model.module_.to("cuda")
    on_gpu = evaluate(model, topk, "test")
    for name, value in on_cpu.items():
        assert on_gpu[name] == pytest.approx(value, abs=1e-4), name


@pytest.mark.parametrize("cls, task", [(LightGCN, "topk"), (BPRMF, "topk"), (KGCN, "ctr")])
def test_baseline_epoch_on_cuda(cls, task, topk, ctr):
    split = topk if task == "topk" else ctr
    params = {k: v for k, v in cls.SMOKE_PARAMS.items() if k != "trainer"}
    model = cls(trainer=_trainer("cuda"), **params)
    trainer = _fit(model, split)
    assert np.isfinite(trainer.summary_.history[0]["train_loss"])
    assert all(p.device.type == "cuda" for p in model.module_.parameters())
    items, scores = model.recommend(np.arange(5), k=4)
    assert items.shape == (5, 4) and np.all(np.isfinite(scores))
    metrics = evaluate(model, split, "test")  # full ranking (top-K) or AUC (CTR) on the GPU
    assert ("ndcg@10" if task == "topk" else "auc") in metrics


def test_cross_encoder_lora_epoch_on_cuda(fewshot_split, tiny_lm):  # noqa: F811
    from fusionrec.models.cross_encoder.recommender import CrossEncoderRecommender

    model = CrossEncoderRecommender(**_params(tiny_lm, mode="lora", device="cuda",
                                              precision="auto"), runner=RUNNER)
    model.fit(fewshot_split)
    assert next(model.net_.lm.parameters()).device.type == "cuda"
    assert model.precision_["precision"] in ("bf16", "fp32")
    assert np.all(np.isfinite(model.score_pairs(fewshot_split.test)))


def test_fusion_lora_epoch_on_cuda(ctr, tiny_lm, tmp_path):  # noqa: F811
    params = {**FUSION, "sources": ["interactions", "item_text"], "lm_mode": "lora",
              "lora_r": 4, "lm_batch_texts": 16, "text_hidden": 0,
              "encoder": {"model": str(tiny_lm), "precision": "fp32", "max_length": 32,
                          "cache_dir": str(tmp_path / "cache")}}
    model = FusionRecommender(trainer=_trainer("cuda"), **params, runner=RUNNER)
    _fit(model, ctr)
    assert next(model.text_lm_.parameters()).device.type == "cuda"
    model.save(tmp_path / "model")
    loaded = FusionRecommender.load(tmp_path / "model")
    pairs = ctr.test
    np.testing.assert_allclose(loaded.score(pairs.user, pairs.item),
                               model.score(pairs.user, pairs.item), rtol=1e-4, atol=1e-5)


def test_gpu_checkpoint_and_model_load_on_the_cpu(topk, tmp_path):
    from fusionrec.training.checkpoint import load_checkpoint
    from fusionrec.training.optim import make_optimizer

    model = FusionRecommender(trainer=_trainer("cuda", epochs=2), **FUSION, runner=RUNNER)
    _fit(model, topk, run_dir=tmp_path / "run")
    gpu_state = {k: v.cpu() for k, v in model.module_.state_dict().items()}
    # the checkpoint restores into a module built on the CPU (safetensors load to the CPU)
    fresh = FusionRecommender(trainer=_trainer("cpu"), **FUSION, runner=RUNNER)
    module = fresh.build(topk, fresh.trainer)
    state, _ = load_checkpoint(tmp_path / "run", module, make_optimizer(fresh.trainer,
                                                                         module.parameters()))
    assert state["epochs_run"] == 2
    for key, value in module.state_dict().items():
        if key in gpu_state and value.is_floating_point():
            torch.testing.assert_close(value, gpu_state[key])
    # and a saved model (tables + scorer) scores the same on the CPU as on the GPU
    model.save(tmp_path / "model")
    loaded = FusionRecommender.load(tmp_path / "model")
    users = np.arange(10)
    np.testing.assert_allclose(loaded.score_all(users), model.score_all(users),
                               rtol=1e-4, atol=1e-4)


def test_cpu_checkpoint_resumes_on_cuda(topk, tmp_path):
    """A run checkpointed on the CPU continues on the GPU: weights and optimiser state load
    from the CPU file into the GPU module (``--resume`` after moving a run to a GPU box)."""
    run = tmp_path / "run"
    first = FusionRecommender(trainer=_trainer("cpu", epochs=1), **FUSION, runner=RUNNER)
    _fit(first, topk, run_dir=run)
    second = FusionRecommender(trainer=_trainer("cuda", epochs=2), **FUSION, runner=RUNNER)
    trainer = _fit(second, topk, run_dir=run, resume=True)
    assert [h["epoch"] for h in trainer.summary_.history] == [1, 2]
    assert next(second.module_.parameters()).device.type == "cuda"
    assert np.isfinite(trainer.summary_.history[-1]["train_loss"])
