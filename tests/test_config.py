"""Run configs: validation names the key, YAML round-trips, overrides are typed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fusionrec.config import (ConfigError, RunConfig, TrainerConfig, apply_overrides, load_config,
                              quickstart_config, save_config)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_defaults_are_valid_and_synthetic():
    config = RunConfig()
    assert config.data.preset == "synthetic" and config.model.name == "bpr-mf"
    assert config.trainer.optimizer == "adamw" and config.evaluation.ks == (10, 20)


def test_yaml_round_trip(tmp_path):
    config = RunConfig.from_dict({
        "data": {"preset": "lastfm", "exclude_sources": ["social"]},
        "protocol": {"name": "ctr-kgcn", "seed": 3, "params": {"ratios": [0.6, 0.2, 0.2]}},
        "model": {"name": "popularity", "params": {}},
        "trainer": {"optimizer": "sgd", "lr": 0.1, "warmup_steps": 10, "grad_clip": 1.0},
        "evaluation": {"ks": [5, 50], "threshold": 0.4},
    })
    path = save_config(config, tmp_path / "c.yaml")
    again = load_config(path)
    assert again == config
    assert again.to_dict() == config.to_dict()
    assert again.data.exclude_sources == ("social",) and again.evaluation.ks == (5, 50)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load_and_round_trip(path, tmp_path):
    config = load_config(path)
    assert load_config(save_config(config, tmp_path / path.name)) == config


def test_quickstart_yaml_matches_embedded_default():
    assert load_config(CONFIGS / "quickstart.yaml") == quickstart_config()


def test_overrides_are_parsed_as_yaml(tmp_path):
    path = save_config(RunConfig(), tmp_path / "c.yaml")
    config = load_config(path, ["trainer.epochs=3", "trainer.lr=1e-3",
                                "model.params.embedding_dim=16", "evaluation.ks=[1, 5]",
                                "data.preset=lastfm"])
    assert config.trainer.epochs == 3 and isinstance(config.trainer.epochs, int)
    assert config.trainer.lr == pytest.approx(0.001)
    assert config.model.params["embedding_dim"] == 16
    assert config.evaluation.ks == (1, 5) and config.data.preset == "lastfm"


@pytest.mark.parametrize("override, key", [
    ("trainer.lr=-1", "trainer.lr"),
    ("trainer.optimizer=adam", "trainer.optimizer"),
    ("trainer.epochs=0", "trainer.epochs"),
    ("trainer.dropout=1.5", "trainer.dropout"),
    ("trainer.epochs=many", "trainer.epochs"),
    ("trainer.lrr=0.1", "trainer.lrr"),
    ("model.name=nope", "model.name"),
    ("evaluation.ks=[]", "evaluation.ks"),
    ("evaluation.threshold=1", "evaluation.threshold"),
    ("data.exclude_sources=[interactions]", "data.exclude_sources"),
    ("data.spec=x.yaml", "data.preset/data.spec"),
])
def test_invalid_values_name_the_key(tmp_path, override, key):
    path = tmp_path / "c.yaml"
    path.write_text("data: {preset: synthetic}\n")
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(path, [override])


def test_bad_files_and_overrides(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("bogus: {}\n")
    with pytest.raises(ConfigError, match="bogus"):
        load_config(bad)
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides({}, ["epochs"])


def test_sections_are_frozen():
    config = TrainerConfig()
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'lr'"):
        config.lr = 1.0  # type: ignore[misc]
    assert config.lr == TrainerConfig().lr  # the failed assignment left the value alone
    with pytest.raises(TypeError):
        RunConfig().model.params["x"] = 1  # type: ignore[index]


def test_encoder_section_is_the_lm_layers_config(tmp_path):
    from fusionrec.encoders.config import EncoderConfig

    config = RunConfig.from_dict({"encoder": {"model": "hashing:32", "max_length": 64}})
    assert isinstance(config.encoder, EncoderConfig) and config.encoder.max_length == 64
    assert load_config(save_config(config, tmp_path / "c.yaml")) == config
    assert RunConfig().encoder is None
    with pytest.raises(ConfigError, match=r"encoder\.pooling"):
        RunConfig.from_dict({"encoder": {"pooling": "max"}})
    with pytest.raises(ConfigError, match=r"encoder\.nope"):
        RunConfig.from_dict({"encoder": {"nope": 1}})


@pytest.mark.parametrize("section, key, closest", [
    ("trainer", "lrr", "lr"), ("evaluation", "kss", "ks"), ("data", "presett", "preset")])
def test_unknown_section_keys_suggest_the_closest(section, key, closest):
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({section: {key: 1}})
    message = str(caught.value)
    assert f"'{section}.{key}'" in message and f"did you mean '{closest}'?" in message
    assert "\n" not in message


@pytest.mark.parametrize("model, params, expected", [
    # a typo'd parameter name: the model's own dataclass knows the right one
    ("bpr-mf", {"embeding_dim": 8}, "unknown key 'model.params.embeding_dim' for model 'bpr-mf'; "
                                    "did you mean 'embedding_dim'?"),
    ("fusion", {"sourcse": ["social"]}, "did you mean 'sources'?"),
    ("lightgcn", {"layer": 2}, "did you mean 'layers'?"),
    ("cross-encoder", {"lora_rank": 4}, "did you mean 'lora_r'?"),
    # a typo'd source name, the new user's case from issue 16
    ("fusion", {"sources": ["interactions", "socail"]},
     "fusion params: sources: unknown name 'socail'; did you mean 'social'?"),
    ("cross-encoder", {"prompt_sources": ["histroy"]}, "did you mean 'history'?"),
    # a value the dataclass rejects
    ("bpr-mf", {"loss": "bpx"}, "loss must be one of ('auto', 'bpr', 'bce'), got 'bpx'; "
                                "did you mean 'bpr'?"),
    ("cross-encoder-zero-shot", {"method": "prompt-cosin"}, "did you mean 'prompt-cosine'?"),
    ("item-knn", {"k": -1}, "item-knn params: k must be >= 0, got -1"),
])
def test_model_params_are_checked_when_the_config_loads(model, params, expected):
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"model": {"name": model, "params": params}})
    message = str(caught.value)
    assert expected in message and "\n" not in message


def test_model_name_and_excluded_sources_suggest_the_closest():
    with pytest.raises(ConfigError, match="got 'fusoin'; did you mean 'fusion'?"):
        RunConfig.from_dict({"model": {"name": "fusoin"}})
    with pytest.raises(ConfigError, match="did you mean 'social'"):
        RunConfig.from_dict({"data": {"exclude_sources": ["socail"]}})


def test_valid_model_params_still_load():
    config = RunConfig.from_dict({"model": {"name": "fusion", "params": {
        "sources": ["interactions", "social"], "lm_lr": "1e-4", "hidden": [16]}}})
    assert config.model.params["sources"] == ["interactions", "social"]
