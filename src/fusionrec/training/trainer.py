"""One model-agnostic training loop for every torch model in FusionRec.

A model opts in by implementing :class:`~fusionrec.models.base.TorchTrainable` (the model
contract); the loop owns everything else: seeding, optimiser and warm-up, gradient clipping,
validation and early stopping (restoring the best weights), per-epoch checkpoints and
``resume``, progress bars and run-folder telemetry. Other models (e.g. popularity) are simply
fitted.

Device: ``trainer.device`` is resolved once (``fusionrec.devices``); the built module is moved
there with ``module.to(device)`` and every batch with ``devices.move``, so a model needs no
device code in its training path beyond creating tensors next to the ones it is given.

Reproducibility: epoch ``e`` draws its batches from ``numpy.random.default_rng([seed, e])`` and
reseeds torch from ``(seed, e)``, so a run resumed after epoch ``e`` continues exactly as an
uninterrupted one would, without storing RNG state.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from fusionrec.config import EvaluationConfig, TrainerConfig
from fusionrec.data.split import Split
from fusionrec.devices import move, resolve_device
from fusionrec.errors import FusionRecError
from fusionrec.encoders.threads import torch_threads
from fusionrec.models.base import TorchTrainable
from fusionrec.trainer_config import higher_is_better
from fusionrec.training.precision import training_autocast


#: The Trainer's name for the model contract's :class:`TorchTrainable`.
Trainable = TorchTrainable

#: ``evaluate(model, split, part, ks=..., threshold=..., batch_size=...) -> metrics``: the
#: evaluation layer's function, injected (``fusionrec.evaluation.evaluate.evaluate``).
Evaluate = Callable[..., dict]


class TrainerError(FusionRecError, ValueError):
    """The Trainer was set up so that it cannot train as asked (e.g. nothing to validate with)."""


@dataclass
class TrainingSummary:
    """Where training stands; everything but ``monitor`` is saved in each checkpoint."""

    monitor: str | None
    best_epoch: int | None = None
    best_value: float | None = None
    epochs_run: int = 0
    step: int = 0
    bad_epochs: int = 0
    stopped_early: bool = False
    history: list[dict] = field(default_factory=list)
    lr_factor: float = 1.0  # product of the plateau decays so far (trainer.lr_plateau_factor)


_SUMMARY_KEYS = ("best_epoch", "best_value", "epochs_run", "step", "bad_epochs",
                 "stopped_early", "history", "lr_factor")


def resolve_monitor(config: TrainerConfig, task: str, ks: Sequence[int]) -> str:
    if config.monitor != "auto":
        return config.monitor
    return "auc" if task == "ctr" else f"ndcg@{ks[0]}"


#: (the trainer config's rule; tuning and promotion import it under this name)
_higher_is_better = higher_is_better


class Trainer:
    """``Trainer(config, evaluate=evaluate, run_dir=...).fit(model, split)`` trains ``model`` in
    place.

    ``evaluate`` is the evaluation layer's ``fusionrec.evaluation.evaluate.evaluate``, passed in
    because evaluation sits above training: the Trainer validates with it on the split's valid
    part (``evaluation``'s ks, threshold and batch size). Without it the Trainer can still train
    a model that validates itself (``validation_metrics``) or a split with no valid part; anything
    else stops with an error rather than training blind without early stopping."""

    def __init__(self, config: TrainerConfig | None = None, *,
                 evaluate: Evaluate | None = None, evaluation: EvaluationConfig | None = None,
                 run_dir: str | Path | None = None, resume: bool = False, progress: bool = True,
                 callbacks: Sequence[Callable[[int, dict], None]] = (), strategy=None) -> None:
        from fusionrec.training.distributed import LocalStrategy

        self.config = config or TrainerConfig()
        self.evaluate = evaluate
        self.evaluation = evaluation or EvaluationConfig()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.resume = resume
        self.progress = progress
        self.callbacks = tuple(callbacks)
        self.strategy = strategy or LocalStrategy()

    def validate(self, model, split: Split) -> dict[str, float]:
        own = model.validation_metrics(split)
        if own is not None:
            return own
        if len(split.valid) == 0:
            return {}
        if self.evaluate is None:
            raise TrainerError("the Trainer has no evaluate function to validate with: pass "
                               "evaluate=fusionrec.evaluation.evaluate.evaluate")
        ev = self.evaluation
        return self.evaluate(model, split, "valid", ks=ev.ks, threshold=ev.threshold,
                             batch_size=ev.batch_size)

    def fit(self, model, split: Split):
        """Train ``model`` on ``split`` and return it (with the best validation weights)."""
        if not isinstance(model, TorchTrainable):
            model.fit(split)
            self.summary_ = TrainingSummary(monitor=None)
            return model
        import torch

        self.config_ = model.training_config(self.config)
        with torch.random.fork_rng(devices=[]), torch_threads(self.config_.num_threads):
            self.summary_ = self._train(model, split)
        return model

    def _train(self, model, split: Split) -> TrainingSummary:
        import torch

        from fusionrec.training.checkpoint import load_checkpoint, save_checkpoint
        from fusionrec.training.optim import make_optimizer

        cfg = self.config_
        summary = TrainingSummary(monitor=resolve_monitor(cfg, split.task, self.evaluation.ks))
        self.device_ = resolve_device(cfg.device)
        torch.manual_seed(cfg.seed)
        raw_module = model.build(split, cfg).to(self.device_)  # built on the CPU, then moved
        from fusionrec.models.common.cold_start import check_cold_start

        for part in ("valid", "test"):  # a model that cannot score them stops before epoch 1
            check_cold_start(model, split, part)
        if not any(p.requires_grad for p in raw_module.parameters()):
            return self._finish(model, raw_module, None, summary)
        module = self.strategy.wrap(raw_module)
        optimizer = make_optimizer(cfg, model.param_groups(module))
        best = None
        restored = (load_checkpoint(self.run_dir, raw_module, optimizer)
                    if self.resume and self.run_dir is not None else None)
        if restored is not None:
            state, best = restored
            summary = TrainingSummary(**{k: state[k] for k in _SUMMARY_KEYS if k in state},
                                      monitor=summary.monitor)  # (older runs: no lr_factor)
        writes = self.run_dir is not None and self.strategy.is_main
        log = None
        if writes:
            from fusionrec.training.tracking import RunLog

            log = RunLog(self.run_dir, summary.history)
        bar = self._bar(summary.epochs_run)
        try:
            if cfg.validate_initial and not summary.history:  # epoch 0: the built weights
                best = self._validate_initial(model, module, raw_module, optimizer, split,
                                              summary, log)
            epochs = range(summary.epochs_run + 1, cfg.epochs + 1)
            for epoch in ([] if summary.stopped_early else epochs):
                started = time.perf_counter()
                train_loss = self._run_epoch(model, module, optimizer, split, epoch, summary)
                module.eval()
                with torch.no_grad():  # rank 0 validates; every rank gets its metrics
                    valid = self.strategy.on_main(lambda: self.validate(model, split))
                if self._observe(summary, valid, epoch):
                    best = {k: v.detach().to("cpu", copy=True)  # off the GPU's memory
                            for k, v in raw_module.state_dict().items()}
                record = {"epoch": epoch, "step": summary.step,
                          "lr": optimizer.param_groups[0]["lr"], "train_loss": train_loss,
                          "valid": valid, "seconds": round(time.perf_counter() - started, 3)}
                summary.history.append(record)
                if writes:
                    save_checkpoint(self.run_dir, raw_module, optimizer, best,
                                    {k: getattr(summary, k) for k in _SUMMARY_KEYS})
                    log.log(record)
                if bar is not None:
                    value = valid.get(summary.monitor)
                    bar.set_postfix(loss=f"{train_loss:.4f}", **(
                        {summary.monitor: f"{value:.4f}"} if value is not None else {}))
                    bar.update(1)
                for callback in self.callbacks:
                    callback(epoch, record)
                if summary.stopped_early:
                    break
        finally:
            if log is not None:
                log.close()
            if bar is not None:
                bar.close()
        if writes and summary.history:
            from fusionrec.training.tracking import CURVE_FILE, plot_learning_curve

            plot_learning_curve(summary.history, self.run_dir / CURVE_FILE, summary.monitor)
        return self._finish(model, raw_module, best, summary)

    def _finish(self, model, raw_module, best, summary: TrainingSummary) -> TrainingSummary:
        """Put the best weights back and tell the model training is over."""
        if best is not None:
            raw_module.load_state_dict(best)
        raw_module.eval()
        model.trained(summary)
        return summary

    def _validate_initial(self, model, module, raw_module, optimizer, split: Split,
                          summary: TrainingSummary, log):
        """Validate the weights as built (``trainer.validate_initial``): they enter the
        history as epoch 0 and become the best weights unless an epoch beats them."""
        import torch

        module.eval()
        with torch.no_grad():
            valid = self.strategy.on_main(lambda: self.validate(model, split))
        best = None
        if self._observe(summary, valid, 0):
            best = {k: v.detach().to("cpu", copy=True)
                    for k, v in raw_module.state_dict().items()}
        record = {"epoch": 0, "step": 0, "lr": optimizer.param_groups[0]["lr"],
                  "train_loss": None, "valid": valid, "seconds": 0.0}
        summary.history.append(record)
        if log is not None:
            log.log(record)
        return best

    def _run_epoch(self, model, module, optimizer, split: Split, epoch: int,
                   summary: TrainingSummary) -> float:
        """One pass over ``model.training_batches``; returns the mean batch loss."""
        import torch

        from fusionrec.training.optim import lr_at, set_lr

        cfg = self.config_
        # Per-epoch seeds make a resumed run draw exactly what an uninterrupted one would.
        rng = np.random.default_rng([cfg.seed, epoch])
        torch.manual_seed(cfg.seed * 1_000_003 + epoch)
        module.train()
        losses = []
        for batch in self.strategy.shard(model.training_batches(split, cfg.batch_size, rng)):
            set_lr(optimizer, lr_at(cfg, summary.step) * summary.lr_factor)
            optimizer.zero_grad(set_to_none=True)
            with training_autocast(cfg.precision, self.device_):
                loss = model.loss(module, move(batch, self.device_))
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"training loss became {loss.item()} at epoch {epoch}, step {summary.step}; "
                    "try a lower trainer.lr or a trainer.grad_clip")
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.grad_clip)
            optimizer.step()
            summary.step += 1
            losses.append(loss.item())
        return self.strategy.mean(float(np.mean(losses)) if losses else float("nan"))

    def _observe(self, summary: TrainingSummary, valid: dict[str, float], epoch: int) -> bool:
        """Update best/patience bookkeeping; True when this epoch is the new best."""
        summary.epochs_run = epoch
        value = valid.get(summary.monitor)
        # Gains within min_delta are noise (the valid metric of a converged model jitters):
        # they neither reset patience nor move the best checkpoint.
        margin = self.config_.min_delta
        improved = value is not None and not math.isnan(value) and (
            summary.best_value is None
            or (value > summary.best_value + margin if _higher_is_better(summary.monitor)
                else value < summary.best_value - margin))
        if improved:
            summary.best_value, summary.best_epoch, summary.bad_epochs = value, epoch, 0
        elif valid:
            summary.bad_epochs += 1
            # Reduce on plateau: past its best epoch a model mostly overfits at full lr (top-K
            # Last.FM peaks by epoch 7 of 11); a smaller step can still find a better optimum.
            if (self.config_.lr_plateau_factor < 1
                    and summary.bad_epochs % self.config_.lr_plateau_patience == 0):
                summary.lr_factor *= self.config_.lr_plateau_factor
        summary.stopped_early = bool(self.config_.patience
                                     and summary.bad_epochs >= self.config_.patience)
        return improved

    def _bar(self, done: int):
        """One bar over epochs (postfix: training loss and the monitored metric)."""
        if not self.progress or not self.strategy.is_main:
            return None
        from tqdm import tqdm

        return tqdm(total=self.config_.epochs, initial=done, desc="training", unit="epoch")
