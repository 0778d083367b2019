"""A finished run's metrics on one part of its split (``fusionrec evaluate RUN_DIR``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fusionrec.config import ProtocolConfig
from fusionrec.evaluation.evaluate import evaluate
from fusionrec.training import artifacts
from fusionrec.training.run import evaluation_kwargs, load_run_split, make_split


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
