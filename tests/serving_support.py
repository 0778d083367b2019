"""Shared by the serving and explain tests: one small trained fusion run per test session.

Every test module that needs the run calls :func:`trained_run` with pytest's session base
folder, so the run is trained once (about 15 s) and reused by all of them. The encoder is
``hashing:128`` rather than ``hashing:16``: text cold start matches a user's words to item
texts, which needs a hashing space with few collisions (16 buckets make every text alike).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fusionrec.models.fusion.recommender import FusionRecommender

API_KEY = "test-key-0123456789"
SMOKE = {**FusionRecommender.SMOKE_PARAMS, "embedding_dim": 16,
         "encoder": {"model": "hashing:128"},
         "trainer": {"epochs": 12, "batch_size": 512, "lr": 0.01, "patience": 3}}


def _train(run_dir: Path, protocol: str, params: dict, data: dict | None = None,
           protocol_params: dict | None = None) -> Path:
    from fusionrec.config import RunConfig
    from fusionrec.evaluation.runs import train_run

    params = json.loads(json.dumps(params))
    trainer = {**params.pop("trainer"), "seed": 0, "num_threads": 1}
    config = RunConfig.from_dict({
        "data": {"preset": "synthetic", **(data or {})},
        "protocol": {"name": protocol, "seed": 0, "params": protocol_params or {}},
        "model": {"name": "fusion", "params": params}, "trainer": trainer,
        "evaluation": {"ks": [10], "threshold": 0.5}})
    train_run(config, run_dir, progress=False)
    return run_dir


def trained_run(base: Path, protocol: str = "topk-random", params: dict | None = None,
                data: dict | None = None, protocol_params: dict | None = None,
                name: str | None = None) -> Path:
    """A fusion run folder on the synthetic preset under ``base`` (trained on first use);
    ``data`` adds to the data section (e.g. ``exclude_sources``), ``name`` names the folder
    when the same protocol is trained with other settings."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    run_dir = base / (name or f"fusion-{protocol}")
    if not (run_dir / "manifest.json").is_file():
        _train(run_dir, protocol, params or SMOKE, data, protocol_params)
    return run_dir


AUTH = {"Authorization": f"Bearer {API_KEY}"}


def service_client(run_dir, tmp_path, headers=None, **settings):
    """A TestClient over ``run_dir`` with a fresh SQLite store in ``tmp_path``, the test key and
    ``max_k`` 50; ``settings`` override any :class:`ServeSettings` field, ``headers`` are sent
    with every request (e.g. :data:`AUTH`)."""
    from fastapi.testclient import TestClient

    from fusionrec.serving.app import create_app
    from fusionrec.serving.settings import ServeSettings

    values = {"run_dir": str(run_dir), "database_url": str(tmp_path / "events.sqlite3"),
              "api_key": API_KEY, "max_k": 50, **settings}
    return TestClient(create_app(ServeSettings(**values)), headers=headers)
