"""DDP: batch sharding, a one-process gloo group matching the local path exactly, and a real
two-process ``torchrun`` launch of ``fusionrec train`` matching one process."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fusionrec.config import EvaluationConfig, TrainerConfig, load_config
from fusionrec.data.protocols import make_split
from fusionrec.data.synthetic import generate
from fusionrec.evaluation.evaluate import evaluate
from fusionrec.models.baselines.bpr_mf import BPRMF
from fusionrec.training.distributed import (DDPStrategy, LocalStrategy, batch_rows, launch,
                                            slice_batch, strategy_from_env)
from fusionrec.training.trainer import Trainer
from training_support import RUNNER

REPO = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class _Batch:
    users: torch.Tensor
    items: torch.Tensor
    labels: torch.Tensor | None


def _ranked(rank: int, world: int) -> DDPStrategy:
    """A DDPStrategy with a given rank, without a process group (shard needs none)."""
    strategy = DDPStrategy.__new__(DDPStrategy)
    strategy.rank, strategy.world_size = rank, world
    return strategy


def test_slices_of_every_rank_rebuild_the_batch():
    batch = (torch.arange(7), torch.arange(14).reshape(7, 2), None)
    parts = [slice_batch(batch, r, 3) for r in range(3)]
    assert [len(p[0]) for p in parts] == [2, 2, 3]
    assert torch.equal(torch.cat([p[0] for p in parts]), batch[0])
    assert torch.equal(torch.cat([p[1] for p in parts]), batch[1])
    assert all(p[2] is None for p in parts)
    record = _Batch(torch.arange(4), torch.arange(8).reshape(4, 2), torch.ones(4))
    half = slice_batch(record, 1, 2)
    assert isinstance(half, _Batch) and half.users.tolist() == [2, 3]
    assert half.items.tolist() == [[4, 5], [6, 7]]
    assert slice_batch({"u": np.arange(5)}, 0, 2)["u"].tolist() == [0, 1]


def test_batch_rows_needs_one_leading_size():
    assert batch_rows((torch.zeros(3), np.zeros((3, 4)), None)) == 3
    assert batch_rows((torch.zeros(3), torch.zeros(4))) is None
    assert batch_rows(("text", torch.zeros(3))) is None
    assert batch_rows(None) is None


def test_shard_gives_each_rank_the_same_number_of_steps():
    batches = [(torch.arange(start, start + n),) for start, n in ((0, 4), (4, 4), (8, 1))]
    shards = [list(_ranked(r, 2).shard(iter(batches))) for r in range(2)]
    assert [len(s) for s in shards] == [2, 2]  # the 1-row batch is skipped by both ranks
    rebuilt = torch.cat([s[i][0] for i in range(2) for s in shards])
    assert sorted(rebuilt.tolist()) == list(range(8))
    whole = [("graph", i) for i in range(5)]  # unsliceable: dealt out whole, round-robin
    dealt = [list(_ranked(r, 2).shard(iter(whole))) for r in range(2)]
    assert dealt == [[("graph", 0), ("graph", 2)], [("graph", 1), ("graph", 3)]]
    assert list(LocalStrategy().shard(iter(whole))) == whole


def test_strategy_from_env_is_local_outside_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert isinstance(strategy_from_env(), LocalStrategy)
    monkeypatch.setenv("WORLD_SIZE", "1")
    with launch() as strategy:
        assert type(strategy) is LocalStrategy and strategy.is_main


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def split():
    return make_split(generate(n_users=80, n_items=50, n_interactions=1500, seed=2),
                      "topk-random", seed=0)


def _train(split, strategy) -> tuple[BPRMF, Trainer]:
    config = TrainerConfig(epochs=3, lr=0.02, batch_size=128, patience=0, num_threads=1)
    model = BPRMF(embedding_dim=8, runner=RUNNER)
    trainer = Trainer(config, evaluate=evaluate,
                      evaluation=EvaluationConfig(), progress=False, strategy=strategy)
    trainer.fit(model, split)
    return model, trainer


def test_one_process_gloo_group_trains_exactly_like_local(split, monkeypatch):
    for key, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
                       "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1"}.items():
        monkeypatch.setenv(key, value)
    strategy = DDPStrategy()
    try:
        assert (strategy.rank, strategy.world_size, strategy.is_main) == (0, 1, True)
        assert strategy.mean(3.5) == 3.5 and strategy.on_main(lambda: {"a": 1}) == {"a": 1}
        ddp_model, ddp = _train(split, strategy)
    finally:
        strategy.close()
    assert not torch.distributed.is_initialized()
    local_model, local = _train(split, None)
    for name, value in local_model.module_.state_dict().items():
        assert torch.allclose(ddp_model.module_.state_dict()[name], value, atol=1e-6), name
    assert [r["train_loss"] for r in ddp.summary_.history] == pytest.approx(
        [r["train_loss"] for r in local.summary_.history], rel=1e-6)
    assert evaluate(ddp_model, split) == pytest.approx(evaluate(local_model, split))


@pytest.mark.slow  # two torch processes start up: ~15 s on 2 shared cores
def test_torchrun_two_processes_match_one(tmp_path):
    """``torchrun --nproc_per_node=2 fusionrec train`` against the same config in one process.

    Each rank takes half of every batch, so DDP's averaged gradient is the full-batch gradient
    and both runs take the same steps; only float summation order differs. Tolerances: per-
    epoch training loss within 0.1% relative, test metrics within 0.01 absolute."""
    from fusionrec.evaluation.runs import train_run

    overrides = ["trainer.epochs=4", "trainer.patience=0", "trainer.num_threads=1"]
    config_path = REPO / "configs" / "quickstart-bprmf.yaml"
    one = train_run(load_config(config_path, overrides), tmp_path / "one", progress=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", "-m", "fusionrec.cli.main", "train", "-c", str(config_path),
               "--out", str(tmp_path / "two"), "--no-progress"]
    for item in overrides:
        command += ["--set", item]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained bpr-mf") == 1  # only rank 0 reports

    def history(run):
        return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]

    h1, h2 = history(tmp_path / "one"), history(tmp_path / "two")
    assert [r["step"] for r in h2] == [r["step"] for r in h1]
    assert [r["train_loss"] for r in h2] == pytest.approx([r["train_loss"] for r in h1],
                                                          rel=1e-3)
    two = json.loads((tmp_path / "two" / "manifest.json").read_text())["metrics"]["test"]
    for metric in ("ndcg@10", "recall@10", "ndcg@20"):
        assert abs(two[metric] - one.metrics["test"][metric]) <= 0.01, metric
