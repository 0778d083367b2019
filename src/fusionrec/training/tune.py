"""Hyper-parameter search with Optuna, scored on the validation split only.

``tune(path, out_dir, trials=N)`` loads the data and makes the split once, then for each trial
applies the sampled values (``fusionrec.training.tune_space``) to the run config, builds the
model and trains it with the shared :class:`~fusionrec.training.trainer.Trainer`. The
objective is the trainer's monitor metric (``trainer.monitor``; auto: AUC for CTR, NDCG@first
k for top-K) on the *validation* part at the best epoch; the test part is never scored. Each
epoch's validation value is reported to Optuna, whose median pruner stops trials that fall
behind. Trials run without a run folder (no checkpoints); train the best config with
``fusionrec train -c OUT/best.yaml``.

Writes, under ``out_dir``: ``best.yaml`` (a run config ``fusionrec train`` loads),
``trials.json`` and ``trials.csv`` (one row per trial), ``summary.json``.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Sequence

from fusionrec.config import ConfigError, RunConfig, apply_overrides, read_config_dict
from fusionrec.extras import require
from fusionrec.training.trainer import Evaluate
from fusionrec.training.tune_space import TuneSettings, tune_settings

BEST_FILE, TRIALS_JSON, TRIALS_CSV, SUMMARY_FILE = ("best.yaml", "trials.json", "trials.csv",
                                                    "summary.json")


@dataclass(frozen=True)
class TuneResult:
    monitor: str
    direction: str
    best_value: float
    best_params: dict[str, Any]
    best_trial: int
    best_config: RunConfig
    trials: list[dict[str, Any]]
    out_dir: Path
    seconds: float


def read_tune_config(path: str | Path, overrides: Sequence[str] = ()
                     ) -> tuple[dict[str, Any], Any]:
    """``(run config as a dict, the raw tune section)`` of a config file, overrides applied."""
    raw = dict(read_config_dict(path, overrides))
    return raw, raw.pop("tune", None)


def _with(raw: dict[str, Any], values: dict[str, Any]) -> RunConfig:
    """``raw`` with dotted ``values`` applied, validated (JSON is YAML: values keep types)."""
    return RunConfig.from_dict(apply_overrides(raw, [f"{k}={json.dumps(v)}"
                                                     for k, v in values.items()]))


def _direction(monitor: str) -> str:
    from fusionrec.training.trainer import _higher_is_better

    return "maximize" if _higher_is_better(monitor) else "minimize"


class _Objective:
    """One trial: sampled config -> model -> Trainer on the fixed split -> valid monitor."""

    def __init__(self, raw: dict, settings: TuneSettings, split, monitor: str,
                 progress: bool, evaluate: Evaluate) -> None:
        self.raw, self.settings, self.split = raw, settings, split
        self.monitor, self.progress, self.evaluate = monitor, progress, evaluate
        self._text: dict[str, Any] = {}  # LM features per encoder, shared by trials

    def config(self, values: dict[str, Any]) -> RunConfig:
        if self.settings.epochs is not None:
            values = {"trainer.epochs": self.settings.epochs, **values}
        return _with(self.raw, values)

    def __call__(self, trial) -> float:
        import optuna

        from fusionrec.training.run import build_model
        from fusionrec.training.trainer import Trainer

        values = {p.key: p.suggest(trial) for p in self.settings.space}
        config = self.config(values)
        runner = partial(Trainer, evaluate=self.evaluate, evaluation=config.evaluation,
                         progress=False)  # a trial with sources: auto trains its candidates
        model = self._share_text_features(build_model(config, runner=runner))
        started = time.perf_counter()

        def report(epoch: int, record: dict) -> None:
            value = record.get("valid", {}).get(self.monitor)
            if value is None or math.isnan(value):
                return
            trial.report(float(value), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        trainer = Trainer(config.trainer, evaluate=self.evaluate, evaluation=config.evaluation,
                          progress=self.progress, callbacks=[report])
        trainer.fit(model, self.split)
        summary = trainer.summary_
        value = summary.best_value
        if value is None:  # fitted without epochs (e.g. item-knn): score it once
            value = trainer.validate(model, self.split).get(self.monitor)
        if value is None or math.isnan(value):
            raise ValueError(f"validation has no {self.monitor!r}; set trainer.monitor to one "
                             "of the validation metrics")
        trial.set_user_attr("epochs_run", summary.epochs_run)
        trial.set_user_attr("best_epoch", summary.best_epoch)
        trial.set_user_attr("train_seconds", round(time.perf_counter() - started, 3))
        return float(value)

    def _share_text_features(self, model):
        """Frozen LM features depend on the encoder only: encode (or read the cache) once."""
        from fusionrec.models.base import SharesTextFeatures

        if not isinstance(model, SharesTextFeatures):
            return model
        features = self.split.features
        encoder = model.frozen_text_encoder(features)
        if encoder is None:
            return model
        from fusionrec.models.fusion.build import load_text_features

        key = json.dumps(encoder.to_dict(), sort_keys=True, default=str)
        if key not in self._text:
            self._text[key] = load_text_features(features, encoder)
        return model.set_text_features(self._text[key])


def _baseline(config: RunConfig, settings: TuneSettings) -> dict[str, Any]:
    """The config's own values of the searched keys, where they lie in the space."""
    found = {}
    for param in settings.space:
        node: Any = config.to_dict()
        for part in param.key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None and param.contains(node):
            found[param.key] = node
    return found


def _trial_rows(study) -> list[dict[str, Any]]:
    rows = []
    for t in study.trials:
        steps = t.intermediate_values
        rows.append({"number": t.number, "state": t.state.name,
                     # only a finished trial has an objective value
                     "value": t.value if t.state.name == "COMPLETE" else None,
                     "last_reported": steps[max(steps)] if steps else None,
                     "epochs_run": t.user_attrs.get("epochs_run", len(steps) or None),
                     "best_epoch": t.user_attrs.get("best_epoch"),
                     "seconds": round(t.duration.total_seconds(), 3) if t.duration else None,
                     "params": dict(t.params)})
    return rows


def _write_trials(out: Path, rows: list[dict[str, Any]], keys: Sequence[str]) -> None:
    (out / TRIALS_JSON).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    with (out / TRIALS_CSV).open("w", newline="", encoding="utf-8") as handle:
        fields = ["number", "state", "value", "last_reported", "epochs_run", "best_epoch",
                  "seconds", *keys]
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({**{k: row[k] for k in fields if k in row}, **row["params"]})


def _write_best(out: Path, config: RunConfig, result_line: str) -> Path:
    path = out / BEST_FILE
    header = (f"# Best config of `fusionrec tune` ({result_line}).\n"
              "# Train it with: fusionrec train -c best.yaml --out RUN_DIR\n")
    path.write_text(header + config.to_yaml(), encoding="utf-8")
    return path


def tune(config_path: str | Path, out_dir: str | Path, *, evaluate: Evaluate,
         trials: int | None = None, timeout: float | None = None, overrides: Sequence[str] = (),
         data_dir: str | None = None, progress: bool = False, seed: int | None = None
         ) -> TuneResult:
    """Search the config's space for ``trials`` trials (or until ``timeout`` seconds).
    ``evaluate`` (``fusionrec.evaluation.evaluate.evaluate``, passed in because evaluation sits
    above training) scores each trial's validation part."""
    require("tune", "tuning")
    import optuna

    from fusionrec.training.run import load_data, make_split
    from fusionrec.training.trainer import resolve_monitor

    started = time.perf_counter()
    raw, tune_raw = read_tune_config(config_path, overrides)
    base = RunConfig.from_dict(raw)
    settings = tune_settings(tune_raw, base.model.name)
    trials = trials or settings.trials
    if trials is None and timeout is None:
        raise ConfigError("give --trials N (or tune.trials in the config) or --timeout")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} already holds files; choose a new --out folder")
    _with(raw, {p.key: p.example() for p in settings.space})  # a bad key fails here, not later
    split = make_split(load_data(base.data, data_dir).dataset, base.protocol)
    if len(split.valid) == 0:
        raise ConfigError(f"protocol {base.protocol.name!r} gives no validation part to tune on")
    monitor = resolve_monitor(base.trainer, split.task, base.evaluation.ks)
    direction = _direction(monitor)
    objective = _Objective(raw, settings, split, monitor, progress, evaluate)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=settings.startup_trials,
                                          n_warmup_steps=settings.warmup_epochs)
              if settings.pruner == "median" else optuna.pruners.NopPruner())
    sampler = optuna.samplers.TPESampler(seed=base.trainer.seed if seed is None else seed)
    optuna.logging.set_verbosity(optuna.logging.INFO if progress else optuna.logging.WARNING)
    study = optuna.create_study(direction=direction, sampler=sampler, pruner=pruner,
                                study_name=Path(config_path).stem)
    if settings.baseline:
        start = _baseline(base, settings)
        if start:
            study.enqueue_trial(start)
    out.mkdir(parents=True, exist_ok=True)
    keys = [p.key for p in settings.space]
    # a diverging trial (NaN loss) or an invalid combination fails alone; the study goes on.
    # The trial tables are rewritten after every trial, so an interrupted search keeps them.
    study.optimize(objective, n_trials=trials, timeout=timeout,
                   catch=(FloatingPointError, ValueError),
                   callbacks=[lambda s, _: _write_trials(out, _trial_rows(s), keys)])
    rows = _trial_rows(study)
    _write_trials(out, rows, keys)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise ConfigError(f"no trial finished ({len(rows)} tried; see {out / TRIALS_JSON})")
    best = study.best_trial
    # the search may shorten epochs; the best config keeps the config's own trainer.epochs
    best_config = _with(raw, dict(best.params))
    line = (f"{len(rows)} trials, best valid {monitor} {best.value:.4f} (trial {best.number}) "
            f"on {base.data.spec or base.data.preset} / {base.protocol.name}")
    _write_best(out, best_config, line)
    seconds = time.perf_counter() - started
    counts = {state: sum(r["state"] == state for r in rows) for state in
              ("COMPLETE", "PRUNED", "FAIL")}
    summary = {"config": str(config_path), "monitor": monitor, "direction": direction,
               "part": "valid", "best_trial": best.number, "best_value": best.value,
               "best_params": dict(best.params), "trials": counts,
               "space": [p.__dict__ | {"choices": list(p.choices)} for p in settings.space],
               "seconds": round(seconds, 3)}
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str) + "\n",
                                    encoding="utf-8")
    return TuneResult(monitor, direction, float(best.value), dict(best.params), best.number,
                      best_config, rows, out, seconds)
