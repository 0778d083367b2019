"""The search space of ``fusionrec tune``: a ``tune:`` section of the run config, or a default
per model. Keys are the dotted config keys ``--set`` takes::

    tune:
      trials: 30                 # default for --trials
      epochs: 10                 # trainer.epochs of each trial (default: the config's)
      pruner: median             # median (stop trials below the median epoch curve) | none
      startup_trials: 3          # trials that always finish before pruning starts
      warmup_epochs: 1           # epochs every trial runs before it can be pruned
      baseline: true             # trial 0 tries the config's own values where in range
      space:
        trainer.lr: {low: 1.0e-4, high: 5.0e-2, log: true}
        model.params.embedding_dim: {choices: [16, 32, 64]}
        model.params.layers: {type: int, low: 1, high: 3}

A parameter is ``float`` (``low``/``high``, optional ``log``, ``step``), ``int`` (the same,
integers) or ``categorical`` (``choices``); ``type`` may be left out when the values say it.
Only ``model``, ``trainer`` and ``encoder`` keys may be searched: the data and the protocol stay
fixed, so every trial is scored on the same validation split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from fusionrec.config import ConfigError

TUNABLE_SECTIONS = ("model", "trainer", "encoder")
PRUNERS = ("median", "none")


@dataclass(frozen=True)
class Param:
    """One searched hyper-parameter at the dotted config ``key``."""

    key: str
    kind: str                       # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()

    def __post_init__(self) -> None:
        where = f"tune.space.{self.key}"
        if self.key.split(".")[0] not in TUNABLE_SECTIONS or "." not in self.key:
            raise ConfigError(f"{where}: only {TUNABLE_SECTIONS} keys can be tuned (data and "
                              "protocol stay fixed so trials share one validation split)")
        if self.kind == "categorical":
            if not self.choices:
                raise ConfigError(f"{where}: categorical needs a non-empty choices list")
            return
        if self.kind not in ("float", "int"):
            raise ConfigError(f"{where}: type must be float, int or categorical, "
                              f"got {self.kind!r}")
        if self.low is None or self.high is None or not self.low < self.high:
            raise ConfigError(f"{where}: needs low < high, got {self.low!r}, {self.high!r}")
        if self.log and self.low <= 0:
            raise ConfigError(f"{where}: log scale needs low > 0, got {self.low!r}")
        if self.log and self.step is not None:
            raise ConfigError(f"{where}: log and step cannot be combined")

    @classmethod
    def from_raw(cls, key: str, raw: Any) -> "Param":
        if isinstance(raw, list):
            raw = {"choices": raw}
        if not isinstance(raw, Mapping):
            raise ConfigError(f"tune.space.{key} must be a mapping (low/high or choices), "
                              f"got {raw!r}")
        known = {"type", "low", "high", "log", "step", "choices"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"tune.space.{key}: unknown key(s) {unknown}; known: "
                              f"{sorted(known)}")
        kind = raw.get("type")
        if kind is None:
            ints = all(isinstance(raw.get(k), int) for k in ("low", "high"))
            kind = "categorical" if "choices" in raw else "int" if ints else "float"
        try:
            low = None if raw.get("low") is None else float(raw["low"])
            high = None if raw.get("high") is None else float(raw["high"])
            step = None if raw.get("step") is None else float(raw["step"])
        except (TypeError, ValueError):
            raise ConfigError(f"tune.space.{key}: low/high/step must be numbers, "
                              f"got {raw!r}") from None
        return cls(key, kind, low, high, bool(raw.get("log", False)), step,
                   tuple(raw.get("choices") or ()))

    def suggest(self, trial) -> Any:
        """This parameter's value for an Optuna ``trial``."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)

    def contains(self, value: Any) -> bool:
        """Whether ``value`` lies in this parameter's range (or is one of its choices)."""
        if self.kind == "categorical":
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind == "int" and int(value) != value:
            return False
        return self.low <= value <= self.high

    def example(self) -> Any:
        """A value inside the range (to validate the space before the first trial)."""
        if self.kind == "categorical":
            return self.choices[0]
        return int(self.low) if self.kind == "int" else self.low


@dataclass(frozen=True)
class TuneSettings:
    space: tuple[Param, ...]
    trials: int | None = None
    epochs: int | None = None
    pruner: str = "median"
    startup_trials: int = 3        # trials that always finish before pruning starts
    warmup_epochs: int = 1         # epochs every trial runs before it can be pruned
    baseline: bool = True          # trial 0 tries the config's own values (those in range)

    def __post_init__(self) -> None:
        if not self.space:
            raise ConfigError("tune.space is empty: name at least one parameter to search")
        if self.pruner not in PRUNERS:
            raise ConfigError(f"tune.pruner must be one of {PRUNERS}, got {self.pruner!r}")
        for name in ("trials", "epochs"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"tune.{name} must be an int >= 1, got {value!r}")
        if not isinstance(self.baseline, bool):
            raise ConfigError(f"tune.baseline must be true or false, got {self.baseline!r}")
        if self.startup_trials < 0 or self.warmup_epochs < 0:
            raise ConfigError("tune.startup_trials and tune.warmup_epochs must be >= 0")


_LR = {"low": 1e-4, "high": 5e-2, "log": True}
_WD = {"low": 1e-8, "high": 1e-2, "log": True}
#: Default search spaces per model name (when the config has no ``tune.space``).
DEFAULT_SPACES: dict[str, dict[str, Any]] = {
    "fusion": {"trainer.lr": _LR, "trainer.weight_decay": _WD,
               "model.params.embedding_dim": [16, 32, 64, 128],
               "model.params.layers": {"low": 0, "high": 3},
               "model.params.source_dropout": {"low": 0.0, "high": 0.5},
               "model.params.mlp_dropout": {"low": 0.0, "high": 0.5}},
    "bpr-mf": {"trainer.lr": _LR, "trainer.weight_decay": _WD,
               "model.params.embedding_dim": [16, 32, 64, 128],
               "trainer.dropout": {"low": 0.0, "high": 0.5}},
    "lightgcn": {"trainer.lr": _LR, "model.params.embedding_dim": [16, 32, 64, 128],
                 "model.params.layers": {"low": 1, "high": 4},
                 "model.params.reg_weight": {"low": 1e-6, "high": 1e-2, "log": True}},
    "kgcn": {"trainer.lr": _LR, "model.params.embedding_dim": [8, 16, 32, 64],
             "model.params.n_iter": {"low": 1, "high": 2},
             "model.params.neighbours": [4, 8, 16],
             "model.params.l2_weight": {"low": 1e-6, "high": 1e-2, "log": True}},
    "item-knn": {"model.params.k": {"low": 10, "high": 400, "log": True},
                 "model.params.shrink": {"low": 0.0, "high": 100.0}},
}


def tune_settings(raw: Any, model_name: str) -> TuneSettings:
    """Validated settings from a config's ``tune`` section (None: all defaults)."""
    raw = dict(raw or {})
    known = {"space", "trials", "epochs", "pruner", "startup_trials", "warmup_epochs",
             "baseline"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"tune: unknown key(s) {unknown}; known: {sorted(known)}")
    space = raw.pop("space", None)
    if space is None:
        if model_name not in DEFAULT_SPACES:
            raise ConfigError(f"model {model_name!r} has no default search space; give one in "
                              f"the config's tune.space (defaults exist for "
                              f"{sorted(DEFAULT_SPACES)})")
        space = DEFAULT_SPACES[model_name]
    if not isinstance(space, Mapping):
        raise ConfigError(f"tune.space must map config keys to ranges, got {space!r}")
    params = tuple(Param.from_raw(str(k), v) for k, v in space.items())
    return TuneSettings(space=params, **raw)
