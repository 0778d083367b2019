"""The ``trainer`` section of a run config: the settings of the shared training loop.

Its own module below the models, which are built with it (``model.fit`` trains with the run's
trainer settings); the rest of the run config (``fusionrec.config``) sits above the models
because it checks ``model.name`` and ``model.params`` against the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from fusionrec.devices import DEVICE_CHOICES, device_spec_error
from fusionrec.errors import FusionRecError
from fusionrec.precision import TRAINING_PRECISIONS


class ConfigError(FusionRecError, ValueError):
    """An invalid configuration value; the message names the dotted key."""


def _check(ok: bool, key: str, message: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key} {message}, got {value!r}")



@dataclass(frozen=True)
class TrainerConfig:
    """Settings of the shared training loop (see ``fusionrec.training.trainer``)."""

    SECTION: ClassVar[str] = "trainer"
    optimizer: str = "adamw"          # adamw | sgd
    lr: float = 0.005  # learning rate
    warmup_steps: int = 0             # linear warm-up from 0 to lr over this many steps
    # multiply lr by this after lr_plateau_patience epochs without a better valid metric
    lr_plateau_factor: float = 1.0    # (1.0: constant lr)
    lr_plateau_patience: int = 1      # epochs without a better valid metric before lr drops
    batch_size: int = 2048  # training rows per step
    epochs: int = 50  # maximum epochs (early stopping may end sooner)
    weight_decay: float = 0.0  # decoupled weight decay (adamw) or L2 (sgd)
    momentum: float = 0.0             # sgd only
    dropout: float = 0.0  # dropout inside the model, for models that use it
    grad_clip: float = 0.0            # max global grad norm; 0 = off
    patience: int = 5                 # epochs without improvement before stopping; 0 = never
    min_delta: float = 0.0            # a valid metric must beat its best by more to improve
    monitor: str = "auto"             # valid metric; auto = ndcg@<first k> (top-K) or auc (CTR)
    seed: int = 0  # seed of initialisation, sampling and shuffling
    num_threads: int = 0              # torch intra-op threads; 0 = leave torch's default
    precision: str = "fp32"           # fp32 | bf16 | auto (bf16 on a GPU that has it)
    # where every torch model trains, scores and encodes: auto | cpu | cuda | cuda:N
    # (auto: a GPU when torch sees one); fusionrec.devices resolves it
    device: str = "auto"
    # also validate the freshly built weights (epoch 0); they compete for the best epoch, so
    # a model whose start is already a sound prior keeps it when training only hurts
    validate_initial: bool = False

    def __post_init__(self) -> None:
        _check(self.optimizer in ("adamw", "sgd"), "trainer.optimizer", "must be adamw or sgd",
               self.optimizer)
        _check(self.lr > 0, "trainer.lr", "must be > 0", self.lr)
        _check(self.warmup_steps >= 0, "trainer.warmup_steps", "must be >= 0", self.warmup_steps)
        _check(0 < self.lr_plateau_factor <= 1, "trainer.lr_plateau_factor", "must be in (0, 1]",
               self.lr_plateau_factor)
        _check(self.lr_plateau_patience >= 1, "trainer.lr_plateau_patience", "must be >= 1",
               self.lr_plateau_patience)
        _check(self.batch_size >= 1, "trainer.batch_size", "must be >= 1", self.batch_size)
        _check(self.epochs >= 1, "trainer.epochs", "must be >= 1", self.epochs)
        _check(self.weight_decay >= 0, "trainer.weight_decay", "must be >= 0", self.weight_decay)
        _check(self.momentum >= 0, "trainer.momentum", "must be >= 0", self.momentum)
        _check(0 <= self.dropout < 1, "trainer.dropout", "must be in [0, 1)", self.dropout)
        _check(self.grad_clip >= 0, "trainer.grad_clip", "must be >= 0", self.grad_clip)
        _check(self.patience >= 0, "trainer.patience", "must be >= 0", self.patience)
        _check(self.min_delta >= 0, "trainer.min_delta", "must be >= 0", self.min_delta)
        _check(bool(self.monitor), "trainer.monitor", "must name a metric or be auto",
               self.monitor)
        _check(self.seed >= 0, "trainer.seed", "must be >= 0", self.seed)
        _check(self.num_threads >= 0, "trainer.num_threads", "must be >= 0", self.num_threads)
        _check(self.precision in TRAINING_PRECISIONS, "trainer.precision",
               f"must be {' or '.join(TRAINING_PRECISIONS)}", self.precision)
        _check(device_spec_error(self.device) is None, "trainer.device",
               f"must be {DEVICE_CHOICES}", self.device)
        _check(isinstance(self.validate_initial, bool), "trainer.validate_initial",
               "must be true or false", self.validate_initial)


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of the validation ``metric`` is better (losses: smaller)."""
    return not (metric.startswith("logloss") or metric.endswith("loss"))
