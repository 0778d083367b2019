"""Runs end to end: ``train_run`` trains a config into a run folder and evaluates it
(``fusionrec train``); ``evaluate_run`` scores a finished run on one part of its split
(``fusionrec evaluate RUN_DIR``). Here, above training, because both evaluate.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

from fusionrec.config import ProtocolConfig, RunConfig
from fusionrec.evaluation.evaluate import evaluate, evaluate_detailed
from fusionrec.training import artifacts
from fusionrec.training.run import (RunResult, build_model, evaluation_kwargs, load_data,
                                    load_run_split, make_split)
from fusionrec.training.trainer import Trainer


def evaluate_run(run_dir: str | Path, *, part: str = "test", protocol: str | None = None,
                 data_dir: str | None = None) -> dict[str, Any]:
    """``{"protocol", "part", "metrics", "wall_seconds"}`` for a finished run."""
    started = time.perf_counter()
    config, manifest, model = artifacts.open_run(run_dir)
    dataset, split = load_run_split(run_dir, config, manifest, data_dir)
    if protocol is not None and protocol != split.protocol:
        # A different protocol re-splits the data; its test pairs may overlap the model's
        # training pairs, so these numbers only compare models trained the same way.
        split = make_split(dataset, ProtocolConfig(name=protocol, seed=config.protocol.seed))
    metrics = evaluate(model, split, part, **evaluation_kwargs(config))
    return {"protocol": split.protocol, "part": part, "metrics": metrics,
            "wall_seconds": round(time.perf_counter() - started, 3)}


def train_run(config: RunConfig, run_dir: str | Path, *, resume: bool = False,
              data_dir: str | None = None, progress: bool = True, callbacks=(),
              strategy=None) -> RunResult:
    """Train ``config`` into ``run_dir`` (``resume`` continues from its last checkpoint).

    ``strategy`` (``fusionrec.training.distributed``; default: one process) sets the process
    topology; under DDP only rank 0 evaluates and writes the run folder, and the other ranks
    return empty ``metrics``."""
    from fusionrec.training.distributed import LocalStrategy

    strategy = strategy or LocalStrategy()
    started = time.perf_counter()
    run_dir = Path(run_dir)
    data = load_data(config.data, data_dir)
    dataset = data.dataset
    split = make_split(dataset, config.protocol)
    # candidate trainings inside fit (fusion sources: auto) validate as the run's Trainer does
    model = build_model(config, runner=partial(Trainer, evaluate=evaluate, progress=False,
                                               evaluation=config.evaluation))
    if strategy.is_main:
        artifacts.write_config(run_dir, config)  # first, so --resume finds it after a crash
    trainer = Trainer(config.trainer, evaluate=evaluate, evaluation=config.evaluation,
                      run_dir=run_dir, resume=resume, progress=progress, callbacks=callbacks,
                      strategy=strategy)
    trainer.fit(model, split)
    summary = trainer.summary_
    if not strategy.is_main:
        return RunResult(run_dir, {}, time.perf_counter() - started, summary.epochs_run,
                         summary.best_epoch)
    test = evaluate_detailed(model, split, "test", **evaluation_kwargs(config))
    metrics = {"valid": evaluate(model, split, "valid", **evaluation_kwargs(config))
               if len(split.valid) else {},
               "test": test.metrics}
    fit = model.fit_details()
    artifacts.write_run(run_dir, config, model, split, dataset, data.checksums, metrics,
                        data_root=data.root, privacy=data.privacy, fit=fit)
    return RunResult(run_dir, metrics, time.perf_counter() - started, summary.epochs_run,
                     summary.best_epoch, test.by_activity, fit)
