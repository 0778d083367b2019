"""Continual learning: ``retrain(RUN_DIR, events, NEW_RUN_DIR)``.

1. Read the events recorded after the parent run (its ``retrain.json`` says where the last
   retrain stopped) and grow the parent's dataset with them (vocabularies grow at the end).
2. Split the new positive pairs per user into train / valid / test; draw a replay sample of
   the parent's training rows.
3. Warm-start the parent's servable model (its checkpoint weights, fresh rows for new ids) and
   train it with the shared Trainer on new train + replay rows for a few epochs (the parent's
   trainer settings otherwise), validating on old + new validation pairs.
4. Forgetting check: the monitored metrics on the parent's own test pairs and on the new test
   pairs, before (the parent model) and after; the promotion gate refuses a model whose
   old-data metric fell by more than ``tolerance``.
5. Write a complete run folder (the grown dataset exported under ``data/`` so the folder
   loads, evaluates and serves like any other) plus ``retrain.json``.

Before and after rank with the same exclusions (each user's training and validation items of
the grown data), and "before" is measured on the new test pairs whose user and item the parent
knows (it has no row for the others); ``new_metrics_after_all`` covers every new test pair.
"""

from __future__ import annotations

import dataclasses
import json
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fusionrec.config import DataConfig, RunConfig
from fusionrec.data.split import Pairs, Split
from fusionrec.errors import FusionRecError
from fusionrec.models.servable import Servable
from fusionrec.training import artifacts
from fusionrec.training.trainer import Evaluate
from fusionrec.continual.split import (concat, empty, replay_sample, restrict,
                                                split_new_pairs)
from fusionrec.continual.promotion import REPORT_FILE, GateResult, promotion_gate

DATA_DIR = "data"
#: Default fine-tuning learning rate, as a share of the parent's: the optimiser restarts with
#: empty moment estimates, so at the full rate the first steps move every touched row by about
#: ``lr`` and knock a converged model off its optimum (seen on the synthetic tests).
FINE_TUNE_LR = 0.3


class RetrainError(FusionRecError, ValueError):
    """Retraining cannot start (nothing new, unsupported parent, occupied output folder)."""


@dataclass(frozen=True)
class RetrainConfig:
    """``epochs``/``lr`` replace the parent's trainer values (``lr=None``: ``FINE_TUNE_LR``
    times the parent's); ``replay``:
    fraction of the parent's training rows replayed; ``valid``/``holdout``: fractions of the
    new pairs for validation and for the forgetting check's test; ``tolerance``: the largest
    absolute drop of the monitored metric on old test data the gate accepts; ``after_id``:
    events after this id (``None``: after the parent's own retrain, else all)."""

    epochs: int = 3
    lr: float | None = None
    replay: float = 0.5
    valid: float = 0.1
    holdout: float = 0.2
    tolerance: float = 0.01
    seed: int = 0
    after_id: int | None = None

    def __post_init__(self) -> None:
        checks = [(self.epochs >= 1, "epochs must be >= 1"),
                  (self.lr is None or self.lr > 0, "lr must be > 0"),
                  (0.0 <= self.replay <= 1.0, "replay must be in [0, 1]"),
                  (self.valid >= 0 and self.holdout > 0, "valid must be >= 0, holdout > 0"),
                  (self.valid + self.holdout < 1, "valid + holdout must be < 1"),
                  (self.tolerance >= 0, "tolerance must be >= 0"),
                  (self.seed >= 0, "seed must be >= 0"),
                  (self.after_id is None or self.after_id >= 0, "after_id must be >= 0")]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"retrain: {message}, got {self}")


@dataclass(frozen=True)
class RetrainResult:
    run_dir: Path
    report: dict[str, Any]
    gate: GateResult


def parent_after_id(run_dir: str | Path) -> int:
    """The last event id the parent was trained on (0 for a run not made by retrain)."""
    path = Path(run_dir) / REPORT_FILE
    if not path.is_file():
        return 0
    return int(json.loads(path.read_text(encoding="utf-8"))["events"]["upto_id"])


def retrain(run_dir: str | Path, events, out_dir: str | Path,
            config: RetrainConfig = RetrainConfig(), *, evaluate: Evaluate,
            data_dir: str | None = None, progress: bool = True) -> RetrainResult:
    """Retrain ``run_dir`` on the events of ``events`` (a store URL/path or an ``EventStore``)
    into ``out_dir``; see the module docstring. The gate's verdict is in the result (and the
    report); nothing is raised when it refuses. ``evaluate`` is
    ``fusionrec.evaluation.evaluate.evaluate`` (evaluation sits above continual learning): it
    validates the training and measures the forgetting check and the new run."""
    from fusionrec.data.events import open_store
    from fusionrec.continual.growth import grow_dataset, read_snapshot
    from fusionrec.training.run import load_run_split
    from fusionrec.continual.warm_start import read_warm_weights

    started = time.perf_counter()
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise RetrainError(f"{out_dir} already holds files; choose a new output folder")
    parent_config, manifest, parent = artifacts.open_run(run_dir)
    if not isinstance(parent, Servable):
        raise RetrainError(f"{run_dir} holds a {parent.name!r} model; retrain "
                           "continues servable models (fusion, lightgcn, bpr-mf)")
    dataset, split = load_run_split(run_dir, parent_config, manifest, data_dir)
    if split.train.history_items is not None:
        raise RetrainError(f"protocol {split.protocol!r} carries per-row histories; retrain "
                           "supports top-K and plain CTR splits")
    warm = read_warm_weights(run_dir, parent, split.features)
    after_id = config.after_id if config.after_id is not None else parent_after_id(run_dir)
    store = open_store(events) if isinstance(events, (str, Path)) else events
    try:
        snapshot = read_snapshot(store, after_id)
    finally:
        if store is not events:
            store.close()
    grown = grow_dataset(dataset, snapshot)
    if not len(grown.positive_user):
        raise RetrainError(f"no new positive events after event {after_id} "
                           f"({len(snapshot.events)} events read); nothing to retrain on")
    rng = np.random.default_rng([config.seed, after_id])
    new = split_new_pairs(grown, split, config.valid, config.holdout, rng)
    replay = replay_sample(split, config.replay, rng)
    loaded = _persist_dataset(grown.dataset, out_dir / DATA_DIR)
    data = loaded.dataset
    parts = {"train": concat(split.train, new.train), "valid": concat(split.valid, new.valid),
             "test": concat(split.test, new.test)}
    from fusionrec.data.protocols import derive_features

    features = derive_features(data, split.protocol, parts["train"], parts["valid"],
                               parts["test"])
    grown_split = Split(split.protocol, split.task, split.seed, parts["train"], parts["valid"],
                        parts["test"], features, params=dict(split.params))
    fit_split = dataclasses.replace(grown_split, train=concat(new.train, replay))
    run_config = _run_config(parent_config, config, parent.used_sources())
    model, summary, rows = _fit(run_config, warm, fit_split, parts["train"], out_dir, progress,
                                evaluate)

    exclude = concat(parts["valid"], new.train.positives())
    check = _forgetting_check(evaluate, parent, model, run_config, split, grown_split, new.test,
                              exclude)
    metric = _monitor(run_config, split.task)
    gate = promotion_gate(check["old_metrics_before"], check["old_metrics_after"], metric,
                          config.tolerance)
    metrics = _run_metrics(evaluate, model, grown_split, run_config)
    # data_root None: the run's data lives inside it and its spec says root "." (relocatable).
    artifacts.write_run(out_dir, run_config, model, grown_split, data, loaded.checksums,
                        metrics, data_root=None)
    report = {
        "format": "fusionrec-retrain", "version": 1,
        # Provenance only, as given (not resolved): nothing reads these paths back.
        "parent_run": str(run_dir), "run_dir": out_dir.name,
        "config": dataclasses.asdict(config), "monitor": metric,
        "events": {"after_id": snapshot.after_id, "upto_id": snapshot.upto_id, **grown.counts,
                   "dropped_heldout_overlap": new.dropped_overlap},
        "events_used": new.from_events,
        "new_pairs": {"train": len(new.train), "valid": len(new.valid), "test": len(new.test),
                      "sampled_negatives": new.sampled_negatives},
        "replay_size": len(replay), "train_rows": len(fit_split.train),
        "vocabulary": {"users": [dataset.n_users, data.n_users],
                       "items": [dataset.n_items, data.n_items],
                       "new_users": list(grown.new_users[:20]),
                       "new_items": list(grown.new_items[:20])},
        "warm_start": {"weights": warm.source, **rows},
        "training": {"epochs_run": summary.epochs_run, "best_epoch": summary.best_epoch,
                     "best_value": summary.best_value, "lr": run_config.trainer.lr},
        **check, "gate": gate.to_dict(), "promoted": gate.passed, "reload": None,
        "wall_seconds": round(time.perf_counter() - started, 2),
    }
    write_report(out_dir, report)
    return RetrainResult(out_dir, report, gate)


def write_report(run_dir: str | Path, report: dict) -> Path:
    path = Path(run_dir) / REPORT_FILE
    path.write_text(json.dumps(report, indent=2, default=_plain) + "\n", encoding="utf-8")
    return path


def _plain(value):
    return value.item() if isinstance(value, np.generic) else str(value)


def _persist_dataset(dataset, folder: Path):
    """Export ``dataset`` (CSV + spec) and load it back, as every later load will see it."""
    from fusionrec.data.export import write_dataset
    from fusionrec.training.run import load_data

    spec = write_dataset(dataset, folder)
    loaded = load_data(DataConfig(spec=str(Path(spec).resolve())))
    if artifacts.dataset_fingerprint(loaded.dataset) != artifacts.dataset_fingerprint(dataset):
        raise RetrainError(f"the grown dataset written to {folder} does not load back the same")
    return loaded


def _run_config(parent: RunConfig, config: RetrainConfig,
                parent_sources: tuple[str, ...] = ()) -> RunConfig:
    """The new run's config. Its spec path is relative to the run folder
    (``artifacts.read_run_config`` anchors it), so the folder can move. A parent that chose its
    sources on valid (fusion ``sources: auto``) is continued on the sources it chose
    (``parent_sources``): a warm start needs the same modules, not a new selection."""
    trainer = dataclasses.replace(parent.trainer, epochs=config.epochs,
                                  lr=config.lr or FINE_TUNE_LR * parent.trainer.lr)
    spec = f"{DATA_DIR}/spec.yaml"
    model = parent.model
    if model.params.get("sources") == "auto":
        model = dataclasses.replace(model, params={**model.params,
                                                   "sources": list(parent_sources)})
    return dataclasses.replace(parent, data=DataConfig(spec=spec), trainer=trainer,
                               model=model)


def _fit(run_config: RunConfig, warm, fit_split: Split, seen: Pairs, out_dir: Path,
         progress: bool, evaluate: Evaluate):
    from fusionrec.training.run import build_model
    from fusionrec.training.trainer import Trainer
    from fusionrec.continual.warm_start import WarmStart

    model = build_model(run_config)
    trainable = WarmStart(model, warm, seen)
    artifacts.write_config(out_dir, run_config)
    trainer = Trainer(run_config.trainer, evaluate=evaluate, evaluation=run_config.evaluation,
                      run_dir=out_dir, progress=progress)
    trainer.fit(trainable, fit_split)
    return model, trainer.summary_, trainable.rows_


def _monitor(config: RunConfig, task: str) -> str:
    from fusionrec.training.trainer import resolve_monitor

    return resolve_monitor(config.trainer, task, config.evaluation.ks)


def _evaluate(evaluate: Evaluate, model, like: Split, test: Pairs, exclude: Pairs, features,
              config) -> dict:
    """Metrics on ``test``; on top-K tasks ``exclude`` stands in for the validation part, whose
    items the ranking skips."""
    from fusionrec.training.run import evaluation_kwargs

    if not len(test):
        return {}
    split = Split(like.protocol, like.task, like.seed, empty(), exclude, test, features)
    return evaluate(model, split, "test", **evaluation_kwargs(config))


def _forgetting_check(evaluate: Evaluate, parent, model, config: RunConfig, old: Split,
                      grown: Split, new_test: Pairs, exclude: Pairs) -> dict[str, Any]:
    n_users, n_items = old.features.n_users, old.features.n_items
    old_exclude = restrict(exclude, n_users, n_items)
    known = restrict(new_test, n_users, n_items)
    f_old, f_new = old.features, grown.features
    measure = functools.partial(_evaluate, evaluate)
    return {
        "old_metrics_before": measure(parent, old, old.test, old_exclude, f_old, config),
        "old_metrics_after": measure(model, grown, old.test, exclude, f_new, config),
        "new_metrics_before": measure(parent, old, known, old_exclude, f_old, config),
        "new_metrics_after": measure(model, grown, known, exclude, f_new, config),
        "new_metrics_after_all": measure(model, grown, new_test, exclude, f_new, config),
        "new_test_pairs": {"known_ids": len(known), "all": len(new_test)},
    }


def _run_metrics(evaluate: Evaluate, model, split: Split, config: RunConfig) -> dict[str, Any]:
    from fusionrec.training.run import evaluation_kwargs

    kwargs = evaluation_kwargs(config)
    return {"valid": evaluate(model, split, "valid", **kwargs) if len(split.valid) else {},
            "test": evaluate(model, split, "test", **kwargs)}
