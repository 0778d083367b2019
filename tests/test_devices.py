"""``trainer.device`` on a machine without a GPU: validation, the one-line error for ``cuda``,
moving nested batches and the fusion model's graph with the module, device-side ranking, the
DDP backend choice, and per-device reproducibility (the CPU twice gives identical weights).

The tests that need a GPU live in ``tests/test_gpu.py`` (marker ``gpu``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fusionrec.config import ConfigError, RunConfig, TrainerConfig
from fusionrec.data.protocols import make_split
from fusionrec.data.synthetic import generate
from fusionrec.devices import DeviceError, device_spec_error, map_tensors, move, resolve_device
from fusionrec.models.baselines.bpr_mf import BPRMF
from fusionrec.models.common.ranking import SeenItems, _top_k_on_device, recommend_by_scores
from fusionrec.models.fusion.recommender import FusionRecommender
from fusionrec.training.distributed import process_group_backend
from fusionrec.training.precision import resolved_precision, training_autocast
from fusionrec.evaluation.evaluate import evaluate
from fusionrec.training.trainer import Trainer
from training_support import RUNNER

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")


@pytest.fixture(scope="module")
def split():
    return make_split(generate(n_users=60, n_items=40, n_interactions=900, seed=3),
                      "topk-random", seed=0)


def _fast(**changes) -> TrainerConfig:
    return TrainerConfig(**{"epochs": 2, "lr": 0.02, "batch_size": 128, "patience": 0,
                            "num_threads": 1, **changes})


@pytest.mark.parametrize("spec", ["auto", "cpu", "cuda", "cuda:0", "cuda:3"])
def test_device_settings_that_validate(spec):
    assert device_spec_error(spec) is None
    assert TrainerConfig(device=spec).device == spec


@pytest.mark.parametrize("spec", ["gpu", "CUDA", "cuda:", "cuda:x", "mps", "", 0])
def test_bad_device_setting_is_a_one_line_config_error(spec):
    with pytest.raises(ConfigError) as error:
        RunConfig.from_dict({"trainer": {"device": spec}})
    message = str(error.value)
    assert message.startswith("trainer.device must be") and "\n" not in message
    if isinstance(spec, str):
        assert "auto | cpu | cuda | cuda:N" in message


@no_gpu
@pytest.mark.parametrize("spec", ["cuda", "cuda:1"])
def test_cuda_without_a_gpu_is_a_clear_error(spec):
    with pytest.raises(DeviceError) as error:
        resolve_device(spec)
    assert "sees no CUDA GPU" in str(error.value) and "\n" not in str(error.value)


@no_gpu
def test_auto_is_the_cpu_without_a_gpu_and_precision_auto_is_fp32_there():
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolved_precision("auto", "cpu") == "fp32"
    assert resolved_precision("bf16", "cpu") == "bf16"
    with training_autocast("auto", torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")
    with training_autocast("bf16", torch.device("cpu")):
        assert torch.is_autocast_enabled("cpu")


@no_gpu
def test_trainer_refuses_cuda_before_building_anything(split):
    model = BPRMF(embedding_dim=4, trainer=_fast(device="cuda"), runner=RUNNER)
    with pytest.raises(DeviceError, match="sees no CUDA GPU"):
        model.fit(split)
    assert not hasattr(model, "module_")


@no_gpu
def test_cli_train_with_cuda_reports_one_line(tmp_path, capsys):
    from fusionrec.cli.main import main

    config = tmp_path / "run.yaml"
    config.write_text("model: {name: bpr-mf, params: {embedding_dim: 4}}\n"
                      "trainer: {epochs: 1, device: cuda}\n", encoding="utf-8")
    code = main(["train", "-c", str(config), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert "sees no CUDA GPU" in err and len(err.splitlines()) == 1


@dataclasses.dataclass(frozen=True)
class _Batch:
    users: torch.Tensor
    negatives: tuple
    note: str


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_move_reaches_every_tensor_and_keeps_the_rest():
    sparse = torch.eye(3).to_sparse_csr()
    batch = {"b": _Batch(torch.arange(3), (torch.ones(2), [sparse]), "keep"), "n": 5}
    doubled = map_tensors(batch, lambda t: t.to(torch.float64))
    assert doubled["b"].users.dtype == torch.float64
    assert doubled["b"].negatives[0].dtype == torch.float64
    assert doubled["b"].negatives[1][0].dtype == torch.float64
    assert doubled["b"].negatives[1][0].layout == torch.sparse_csr
    assert doubled["b"].note == "keep" and doubled["n"] == 5
    # On the CPU a CPU batch comes back as the very same object: no copy per training step.
    assert move(batch, torch.device("cpu")) is batch
    on_meta = move(batch["b"].users, "meta")
    assert on_meta.device.type == "meta" and on_meta.shape == (3,)


def test_fusion_module_carries_its_graph_and_bags_when_moved(split):
    """The training graph and the attribute bags are plain tensors, not buffers: ``.to()``
    must still reach them (on a GPU a forgotten one fails the first sparse product)."""
    model = FusionRecommender(trainer=_fast(), embedding_dim=8, sources="all", layers=1,
                              social_layers=1, hidden=[8], encoder={"model": "hashing:16"},
                              runner=RUNNER)
    module = model.build(split, model.trainer)
    module.double()  # the same _apply path a device move takes, observable on the CPU
    graph = module.graph
    assert graph.bipartite.matrix.dtype == torch.float64
    assert graph.user_items.transpose.dtype == torch.float64
    for name, encoder in module.encoders.items():
        for attr in ("native_bag", "extra_bag"):
            bag = getattr(encoder, attr, None)
            if bag is not None:
                assert bag.matrix.dtype == torch.float64, (name, attr)


def test_device_ranking_equals_the_numpy_path():
    """The GPU branch of ``recommend_by_scores`` (mask seen items, ``torch.topk``) run on a
    CPU tensor gives what the numpy path gives (scores without ties)."""
    rng = np.random.default_rng(0)
    scores = rng.permutation(6 * 30).reshape(6, 30).astype(np.float32)  # all distinct
    seen = SeenItems.from_pairs(_pairs(rng, users=6, items=30), n_users=6)
    users = np.arange(6)
    items, best = _top_k_on_device(torch.from_numpy(scores), users, 7, seen)
    expected = recommend_by_scores(lambda batch: scores[batch], users, 7, seen)
    np.testing.assert_array_equal(items, expected[0])
    np.testing.assert_array_equal(best, expected[1])
    for row, user in enumerate(users):  # nothing seen comes back
        assert not set(items[row]) & set(seen.items_of(user))


def _pairs(rng, users: int, items: int):
    from fusionrec.data.split import Pairs

    user = np.repeat(np.arange(users), 5)
    item = np.concatenate([rng.choice(items, 5, replace=False) for _ in range(users)])
    return Pairs(user, item, np.ones(len(user), dtype=np.float32))


def test_cpu_tensor_scores_rank_like_numpy_scores(split):
    model = BPRMF(embedding_dim=4, trainer=_fast(device="cpu"), runner=RUNNER).fit(split)
    users = np.arange(10)
    via_tensor = recommend_by_scores(model._score_rows, users, 5, model.seen_)
    via_numpy = recommend_by_scores(model.score_all, users, 5, model.seen_)
    np.testing.assert_array_equal(via_tensor[0], via_numpy[0])


@pytest.mark.parametrize("model_cls, params", [
    (BPRMF, {"embedding_dim": 4}),
    (FusionRecommender, {"embedding_dim": 8, "sources": "all", "layers": 1, "hidden": [8],
                         "source_dropout": 0.2, "encoder": {"model": "hashing:16"}}),
])
def test_same_seed_same_device_same_weights(split, model_cls, params):
    def weights():
        model = model_cls(trainer=_fast(device="cpu"), runner=RUNNER, **params).fit(split)
        return {k: v.detach().clone() for k, v in model.module_.state_dict().items()}

    first, second = weights(), weights()
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_trainer_records_the_device_it_trained_on(split):
    trainer = Trainer(_fast(device="cpu"), evaluate=evaluate, progress=False)
    model = trainer.fit(BPRMF(embedding_dim=4, runner=RUNNER), split)
    assert trainer.device_ == torch.device("cpu")
    assert model.module_.user.weight.device.type == "cpu"


def test_run_config_hands_trainer_device_to_the_cross_encoder():
    from fusionrec.training.run import build_model

    config = RunConfig.from_dict({"model": {"name": "cross-encoder", "params": {"mode": "none"}},
                                  "trainer": {"device": "cpu", "seed": 4}})
    model = build_model(config)
    assert model.config.device == "cpu" and model.config.seed == 4
    pinned = RunConfig.from_dict({"model": {"name": "cross-encoder",
                                            "params": {"mode": "none", "device": "auto"}},
                                  "trainer": {"device": "cpu"}})
    assert build_model(pinned).config.device == "auto"  # model.params wins


@pytest.mark.parametrize("device, local_rank, gpus, expected", [
    ("cpu", 0, 8, ("gloo", None)),
    ("auto", 0, 0, ("gloo", None)),
    ("auto", 1, 2, ("cpu:gloo,cuda:nccl", 1)),
    ("cuda", 3, 4, ("cpu:gloo,cuda:nccl", 3)),
])
def test_ddp_backend_follows_the_device(device, local_rank, gpus, expected):
    assert process_group_backend(device, local_rank, gpus) == expected


@pytest.mark.parametrize("device, local_rank, gpus, fragment", [
    ("cuda", 2, 2, "sees 2 GPU(s)"),
    ("cuda:1", 0, 2, "pins one GPU"),
])
def test_ddp_refuses_gpu_settings_it_cannot_honour(device, local_rank, gpus, fragment):
    with pytest.raises(DeviceError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        process_group_backend(device, local_rank, gpus)
