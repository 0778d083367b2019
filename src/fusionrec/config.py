"""Run configuration: one frozen, validated dataclass per section, loaded from YAML.

A run config has six sections (``data``, ``protocol``, ``encoder``, ``model``, ``trainer``,
``evaluation``); each validates itself in ``__post_init__`` and names the offending key, e.g.
``trainer.lr must be > 0, got -1``. ``load_config(path, overrides=["trainer.epochs=3"])`` applies
dotted overrides (values parsed as YAML) before validation.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Mapping

from fusionrec.encoders.config import EncoderConfig
from fusionrec.errors import FusionRecError, did_you_mean
# the trainer section lives below the models (they are built with it); re-exported here
from fusionrec.trainer_config import ConfigError, TrainerConfig, _check


def _frozen_mapping(value: Mapping | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class DataConfig:
    """Where the dataset comes from: a preset name or a source-spec YAML (at most one; neither
    means the embedded ``synthetic`` preset)."""

    SECTION: ClassVar[str] = "data"
    # a preset name: lastfm, lastfm-kg, ml-100k, amazon-instruments, synthetic
    preset: str | None = None
    spec: str | None = None  # a dataset spec YAML (sources, files, columns); excludes preset
    # data root (default: $FUSIONREC_DATA, then ~/.cache/fusionrec/data)
    data_dir: str | None = None
    exclude_sources: tuple[str, ...] = ()  # side sources switched off (ablations)
    # Replace user ids by keyed HMAC pseudonyms at ingest (fusionrec.training.pseudonym). The
    # key comes from $FUSIONREC_PSEUDONYM_KEY or this file: a path, never the key itself,
    # because this config is copied into the run folder.
    pseudonymize: bool = False
    # the pseudonym key file (path) when pseudonymize is true
    pseudonym_key_file: str | None = None
    def __post_init__(self) -> None:
        from fusionrec.data.schema import SOURCE_NAMES

        _check(isinstance(self.pseudonymize, bool), "data.pseudonymize", "must be true or false",
               self.pseudonymize)

        _check(self.preset is None or self.spec is None, "data.preset/data.spec",
               "must not both be set", (self.preset, self.spec))
        if self.preset is None and self.spec is None:
            object.__setattr__(self, "preset", "synthetic")
        object.__setattr__(self, "exclude_sources", tuple(self.exclude_sources))
        for name in self.exclude_sources:
            _check(name in SOURCE_NAMES and name != "interactions", "data.exclude_sources",
                   f"must name side sources among {SOURCE_NAMES[1:]}"
                   f"{did_you_mean(name, SOURCE_NAMES[1:])}", name)


@dataclass(frozen=True)
class ProtocolConfig:
    """The evaluation protocol that turns the dataset into a Split."""

    SECTION: ClassVar[str] = "protocol"
    name: str = "topk-random"  # any of data.protocols.PROTOCOLS, e.g. topk-random, ctr-kgcn, cold-items
    seed: int = 0  # seed of the split's random choices
    # the protocol's own options (e.g. shots for fewshot-tallrec)
    params: Mapping[str, Any] = field(default_factory=dict)
    def __post_init__(self) -> None:
        _check(bool(self.name), "protocol.name", "must be a protocol name", self.name)
        _check(self.seed >= 0, "protocol.seed", "must be >= 0", self.seed)
        object.__setattr__(self, "params", _frozen_mapping(self.params))


@dataclass(frozen=True)
class ModelConfig:
    """A registered model name and its keyword hyper-parameters (the fields of the model's
    parameter dataclass, :data:`fusionrec.models.registry.PARAMS`)."""

    SECTION: ClassVar[str] = "model"
    name: str = "bpr-mf"               # a registered model (see the model sections below)
    params: Mapping[str, Any] = field(default_factory=dict)  # the model's own settings

    def __post_init__(self) -> None:
        from fusionrec.models.registry import MODELS

        if self.name not in MODELS:
            raise ConfigError(f"model.name must be one of {sorted(MODELS)}, got {self.name!r}"
                              f"{did_you_mean(self.name, MODELS)}")
        object.__setattr__(self, "params", _frozen_mapping(self.params))
        _check_model_params(self.name, self.params)


def _check_model_params(name: str, params: Mapping[str, Any]) -> None:
    """Fail on a key the model does not declare (with the closest declared one) or a value its
    parameter dataclass rejects, before any data is loaded."""
    from fusionrec.models.registry import params_class

    cls = params_class(name)
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    for key in params:
        if key not in known:
            raise ConfigError(f"unknown key 'model.params.{key}' for model {name!r}"
                              f"{did_you_mean(key, known) or ';'} known: {known}")
    hints = typing.get_type_hints(cls)
    try:
        cls(**{k: _coerce(v, hints.get(k), f"model.params.{k}") for k, v in params.items()})
    except FusionRecError as error:  # the dataclass's own check: names the model and key
        raise ConfigError(str(error)) from None
    except (ValueError, TypeError) as error:
        raise ConfigError(f"model.params of {name!r}: {error}") from None


@dataclass(frozen=True)
class EvaluationConfig:
    """Cut-offs for ranking metrics, the CTR decision threshold, users per scoring batch, and
    the CTR rows per batch of the per-batch mean AUC/F1 (``batch_auc``) that KGCN-style code
    reports (KGCN's Last.FM batch size: 128)."""

    SECTION: ClassVar[str] = "evaluation"
    ks: tuple[int, ...] = (10, 20)  # cut-offs of the ranking metrics (ndcg@k, recall@k, ...)
    # CTR decision threshold on the predicted probability (precision, recall, F1)
    threshold: float = 0.5
    batch_size: int = 1024  # users scored per batch
    ctr_batch_size: int = 128  # CTR rows per batch of the per-batch mean AUC/F1 (batch_auc)
    def __post_init__(self) -> None:
        object.__setattr__(self, "ks", tuple(self.ks))
        _check(len(self.ks) > 0 and all(k >= 1 for k in self.ks), "evaluation.ks",
               "must be a non-empty list of positive ints", self.ks)
        _check(0 < self.threshold < 1, "evaluation.threshold", "must be in (0, 1)",
               self.threshold)
        _check(self.batch_size >= 1, "evaluation.batch_size", "must be >= 1", self.batch_size)
        _check(self.ctr_batch_size >= 1, "evaluation.ctr_batch_size", "must be >= 1",
               self.ctr_batch_size)


def _encoder_section(value: Any) -> Any:
    """The encoder section as ``EncoderConfig`` when the LM layer provides it."""
    if value is None or isinstance(value, EncoderConfig):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"encoder must be a mapping, got {value!r}")
    try:
        return _build(EncoderConfig, value, "encoder")
    except ConfigError:
        raise
    except ValueError as error:  # the LM layer's own validation error: same one-line message
        raise ConfigError(str(error)) from None


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs; ``encoder`` is ``None`` for models without LM features."""

    data: DataConfig = field(default_factory=DataConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    encoder: EncoderConfig | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "encoder", _encoder_section(self.encoder))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "RunConfig":
        raw = dict(raw or {})
        raw.pop("tune", None)  # the search space of `fusionrec tune`; a run ignores it
        unknown = set(raw) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown section(s) {sorted(unknown)}; known: "
                              f"{[f.name for f in dataclasses.fields(cls)]}")
        sections = {name: _build(section, raw.get(name) or {}, name)
                    for name, section in _SECTIONS.items()}
        return cls(encoder=raw.get("encoder"), **sections)

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON-ready values (tuples become lists, mappings dicts)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)


_SECTIONS: dict[str, type] = {"data": DataConfig, "protocol": ProtocolConfig,
                              "model": ModelConfig, "trainer": TrainerConfig,
                              "evaluation": EvaluationConfig}


def _build(cls: type, values: Mapping[str, Any], section: str):
    if not isinstance(values, Mapping):
        raise ConfigError(f"{section} must be a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - known)
    if unknown:
        hint = did_you_mean(unknown[0], known) or ";"
        raise ConfigError(f"unknown key(s) {[f'{section}.{k}' for k in unknown]}{hint} "
                          f"known: {sorted(known)}")
    return cls(**{k: _coerce(v, hints.get(k), f"{section}.{k}") for k, v in values.items()})


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """YAML scalars to the annotated type (int → float, list → tuple); wrong kinds fail."""
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{key} must be a number, got {value!r}") from None
    if hint in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    if hint is str and not isinstance(value, str):
        raise ConfigError(f"{key} must be a string, got {value!r}")
    if typing.get_origin(hint) is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return tuple(value)
    return value


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def apply_overrides(raw: Mapping[str, Any], overrides: typing.Iterable[str]) -> dict[str, Any]:
    """``["trainer.epochs=3", "model.params.embedding_dim=32"]`` applied to a nested dict."""
    import copy

    import yaml

    result = copy.deepcopy(dict(raw or {}))
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip() or "." not in key:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        node = result
        *parents, leaf = key.strip().split(".")
        for part in parents:
            child = node.get(part)
            node[part] = child = dict(child) if isinstance(child, Mapping) else {}
            node = child
        try:
            node[leaf] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            node[leaf] = text
    return result


def read_yaml(path: str | Path, what: str = "config") -> Any:
    """A YAML file's content ({} when empty); a missing file or bad YAML is a ConfigError that
    names the file (``what``: the kind of file, for the message)."""
    import yaml

    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found: {path}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None


def read_config_dict(path: str | Path, overrides: typing.Iterable[str] = ()) -> dict[str, Any]:
    """A config file's YAML as a dict with dotted overrides applied (not yet validated)."""
    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    return apply_overrides(raw, overrides)


def read_run_sections(path: str | Path) -> tuple[dict[str, Any], EncoderConfig,
                                                 dict[str, Any] | None]:
    """``(data section, EncoderConfig, protocol section or None)`` of a run-config YAML; the
    other sections are not validated (``fusionrec encode`` needs only these three)."""
    raw = read_config_dict(path)
    sections = {}
    for name in ("data", "encoder", "protocol"):
        value = raw.get(name) or {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: section '{name}' must be a mapping")
        sections[name] = dict(value)
    protocol = sections["protocol"] or None
    return sections["data"], EncoderConfig.from_dict(sections["encoder"]), protocol


def load_config(path: str | Path, overrides: typing.Iterable[str] = ()) -> RunConfig:
    """Read a run config YAML, apply dotted overrides, validate."""
    return RunConfig.from_dict(read_config_dict(path, overrides))


def save_config(config: RunConfig, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(config.to_yaml(), encoding="utf-8")
    return path


def quickstart_config() -> RunConfig:
    """The embedded default run of ``fusionrec quickstart``: the fusion model, every source of
    the synthetic world (``configs/quickstart.yaml`` holds the same values; a test keeps the two
    equal)."""
    return RunConfig(
        data=DataConfig(preset="synthetic"),
        protocol=ProtocolConfig(name="topk-random", seed=0),
        encoder=EncoderConfig(model="all-MiniLM-L6-v2"),
        model=ModelConfig(name="fusion", params={
            "embedding_dim": 32, "sources": "all", "layers": 2, "social_layers": 1,
            "hidden": [64], "hide_batch_edges": False}),
        # one thread: for a model this small, thread hand-offs cost more than they save
        trainer=TrainerConfig(optimizer="adamw", lr=0.01, batch_size=256, epochs=40,
                              weight_decay=0.0, patience=5, seed=0, num_threads=1),
        evaluation=EvaluationConfig(ks=(10, 20), threshold=0.5),
    )
