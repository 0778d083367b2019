"""The fusion model's LM training modes on a tiny *randomly initialised* BERT.

The LM is the cross-encoder tests' 2-layer, 32-wide BERT (random weights, so what it encodes
means nothing; the bundled MiniLM tokenizer), loaded as a plain encoder; the data is the
synthetic world. What is checked is behaviour: each mode trains exactly the weights it should,
changes the model's scores, leaves the cached text table equal to what the final LM encodes,
and saves/loads to identical scores and an identical LM.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fusionrec.config import TrainerConfig
from fusionrec.data.protocols import make_split
from fusionrec.data.synthetic import generate
from fusionrec.models.fusion.config import FusionConfig
from fusionrec.models.fusion.recommender import FusionRecommender
from fusionrec.training.optim import lr_at, make_optimizer, set_lr
# the tiny random-weight BERT (loaded here without its classification head) and one torch
# thread for tiny tensors, as in the cross-encoder and fusion tests
from test_cross_encoder import tiny_lm  # noqa: E402,F401
from training_support import RUNNER

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def split():
    return make_split(generate(n_users=60, n_items=40, n_interactions=700, seed=3), "ctr-kgcn",
                      seed=0)


@pytest.fixture(scope="module")
def params(tiny_lm, tmp_path_factory):
    cache = tmp_path_factory.mktemp("embedding-cache")
    return {"embedding_dim": 8, "hidden": [16], "layers": 1, "text_hidden": 0,
            "sources": ["interactions", "item_text"], "text_user": "both",
            "encoder": {"model": str(tiny_lm), "precision": "fp32", "cache_dir": str(cache),
                        "max_length": 32, "batch_size": 32},
            "lm_lr": 5e-3, "lm_batch_texts": 12, "lm_top_k": 1, "lora_r": 4, "prefix_tokens": 4,
            "trainer": {"epochs": 2, "batch_size": 256, "lr": 0.01, "patience": 0, "seed": 0}}


def _fit(params, split, mode: str) -> FusionRecommender:
    from fusionrec.evaluation.evaluate import evaluate
    from fusionrec.training.trainer import Trainer

    model = FusionRecommender(**{**params, "lm_mode": mode}, runner=RUNNER)
    Trainer(model.trainer, evaluate=evaluate, progress=False).fit(model, split)
    return model


@pytest.fixture(scope="module")
def frozen(params, split):
    return _fit(params, split, "frozen")


def _initial_lm(params, split, mode: str) -> dict[str, torch.Tensor]:
    """The LM's weights as the Trainer starts them (it seeds torch, then calls build)."""
    model = FusionRecommender(**{**params, "lm_mode": mode}, runner=RUNNER)
    torch.manual_seed(model.trainer.seed)
    model.build(split, model.trainer)
    return {n: p.detach().clone() for n, p in model.text_lm_.named_parameters()}


def _should_train(mode: str, name: str) -> bool:
    if mode == "top_k":
        return ".layer.1." in name  # lm_top_k=1 of 2 layers
    if mode == "lora":
        return "lora_" in name
    if mode == "prefix":
        return "prompt_encoder" in name
    return mode == "full"


def test_frozen_mode_has_no_lm_and_keeps_the_cached_table(frozen, split):
    from fusionrec.encoders.features import text_features

    assert frozen.text_lm_ is None and frozen.text_vectors() == {}
    encoder = frozen.module_.encoders["item_text"]
    assert not any(n.startswith("lm.") for n, _ in encoder.named_parameters())
    cached = text_features(split.features, frozen.config.text_encoder_config(), progress=False)
    np.testing.assert_array_equal(encoder.item_text.numpy(), cached.item)


@pytest.mark.parametrize("mode", ["top_k", "lora", "prefix", "full"])
def test_mode_trains_only_its_weights_and_round_trips(mode, params, split, frozen, tmp_path):
    initial = _initial_lm(params, split, mode)
    model = _fit(params, split, mode)
    trained = dict(model.text_lm_.named_parameters())
    assert set(trained) == set(initial)
    changed = {n for n, p in trained.items() if not torch.equal(p.detach(), initial[n])}
    wanted = {n for n in trained if _should_train(mode, n)}
    assert wanted, "the mode must have weights to train"
    assert changed == wanted  # exactly the intended weights moved (full: every one of them)
    assert {n for n, p in trained.items() if p.requires_grad} == wanted

    # the fine-tuned LM changes what the model scores
    test = split.test
    scores = model.score(test.user, test.item)
    assert np.all(np.isfinite(scores))
    assert not np.allclose(scores, frozen.score(test.user, test.item), atol=1e-4)

    # the cached table is what the final LM encodes, for every item and user, and no longer
    # the frozen LM's table
    encoder = model.module_.encoders["item_text"]
    vectors = model.text_vectors()
    frozen_table = frozen.module_.encoders["item_text"].item_text.numpy()
    assert not np.allclose(vectors["item"], frozen_table, atol=1e-4)
    np.testing.assert_allclose(vectors["item"], model.text_lm_.encode(encoder.live.item_ids),
                               atol=1e-5)
    np.testing.assert_allclose(vectors["user"], model.text_lm_.encode(encoder.live.user_ids),
                               atol=1e-5)

    model.save(tmp_path)
    files = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    if mode in ("lora", "prefix"):
        assert {"lm/adapter_model.safetensors", "lm/adapter_config.json"} <= files
    else:
        from safetensors.numpy import load_file

        saved = load_file(str(tmp_path / "lm" / "trained.safetensors"))
        assert {f"model.{n}" for n in saved} == wanted  # only what trained
    assert not any(f.endswith((".bin", ".pkl", ".pt")) for f in files)
    loaded = FusionRecommender.load(tmp_path)
    np.testing.assert_array_equal(loaded.score(test.user, test.item), scores)
    for side in ("item", "user"):
        np.testing.assert_array_equal(loaded.text_vectors()[side], vectors[side])
    # the loaded LM is the fine-tuned one: it re-encodes the texts to the saved vectors
    np.testing.assert_allclose(loaded.text_lm_.encode(encoder.live.item_ids), vectors["item"],
                               atol=1e-5)
    # and a loaded model saves whole again
    again = FusionRecommender.load(loaded.save(tmp_path / "again"))
    np.testing.assert_array_equal(again.score(test.user, test.item), scores)
    np.testing.assert_allclose(again.text_lm_.encode(encoder.live.user_ids), vectors["user"],
                               atol=1e-5)


def test_run_folder_checksums_and_reloads_the_fine_tuned_lm(tiny_lm, tmp_path):
    """``fusionrec train``'s path: YAML-style config -> run folder whose manifest covers the
    LM adapter files, reloaded to the same scores, and refused once the adapter is altered."""
    from fusionrec.config import RunConfig
    from fusionrec.training import artifacts
    from fusionrec.evaluation.runs import train_run

    config = RunConfig.from_dict({
        "protocol": {"name": "ctr-kgcn"},
        "model": {"name": "fusion", "params": {
            "embedding_dim": 8, "hidden": [16], "layers": 1, "lm_mode": "lora",
            "sources": ["interactions", "item_text"], "lm_batch_texts": 8}},
        "encoder": {"model": str(tiny_lm), "precision": "fp32", "max_length": 32,
                    "cache_dir": str(tmp_path / "cache")},
        "trainer": {"epochs": 1, "batch_size": 256, "num_threads": 1}})
    run = tmp_path / "run"
    train_run(config, run, progress=False)
    manifest = json.loads((run / "manifest.json").read_text())
    assert {"lm/adapter_model.safetensors", "lm/adapter_config.json"} <= set(manifest["files"])
    _, _, model = artifacts.open_run(run)
    assert model.text_lm_.tuning.mode == "lora" and "item" in model.text_vectors()
    adapter = run / "lm" / "adapter_model.safetensors"
    data = bytearray(adapter.read_bytes())
    data[-2] ^= 0xFF
    adapter.write_bytes(bytes(data))
    with pytest.raises(artifacts.RunError, match="adapter_model.safetensors was modified"):
        artifacts.open_run(run)


def test_lm_config_is_validated():
    for bad, key in (({"lm_mode": "adapter"}, "lm_mode"), ({"lm_top_k": 0}, "lm_top_k"),
                     ({"lm_batch_texts": -1}, "lm_batch_texts"), ({"lm_lr": 0.0}, "lm_lr"),
                     ({"lora_r": 0}, "lora_r"), ({"lm_max_length": 4}, "lm_max_length"),
                     ({"lm_mode": "lora", "encoder": {"model": "hashing:16"}}, "encoder.model"),
                     ({"lm_mode": "full", "sources": ["interactions"]}, "item_text")):
        with pytest.raises(ValueError, match=key):
            FusionConfig(**bad)
    config = FusionConfig(lm_mode="lora", lm_max_length=48, encoder={"max_length": 128})
    assert config.text_encoder_config().max_length == 48
    assert FusionConfig(lm_max_length=48).text_encoder_config().max_length == 128  # frozen


def test_top_k_beyond_the_model_depth_fails_clearly(params, split):
    model = FusionRecommender(**{**params, "lm_mode": "top_k", "lm_top_k": 5}, runner=RUNNER)
    with pytest.raises(ValueError, match="top 5 layers, the model has 2"):
        model.build(split, model.trainer)


def test_param_groups_keep_their_learning_rate_ratio_through_warm_up():
    config = TrainerConfig(lr=0.01, warmup_steps=4)
    main, lm = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    lm.bias.requires_grad = False
    optimizer = make_optimizer(config, [{"params": main.parameters()},
                                        {"params": lm.parameters(), "lr": 1e-4}])
    assert [len(g["params"]) for g in optimizer.param_groups] == [2, 1]  # frozen bias left out
    set_lr(optimizer, lr_at(config, 1))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.005)
    assert optimizer.param_groups[1]["lr"] == pytest.approx(0.00005)
