"""The shared Trainer: model-agnostic protocol, optimiser state, early stopping, checkpoints,
resume after a crash, telemetry and reproducibility."""

from __future__ import annotations

import dataclasses
import functools
import json

import numpy as np
import pytest
import torch

from fusionrec.config import EvaluationConfig, TrainerConfig
from fusionrec.data.protocols import make_split
from fusionrec.data.synthetic import generate
from fusionrec.evaluation.evaluate import evaluate
from fusionrec.models.base import ModelError
from fusionrec.models.baselines.bpr_mf import BPRMF
from fusionrec.training.optim import lr_at, make_optimizer, optimizer_from_flat, optimizer_to_flat
from fusionrec.training.trainer import Trainable, Trainer, TrainerError
from training_support import RUNNER


@pytest.fixture(scope="module")
def split():
    return make_split(generate(n_users=80, n_items=50, n_interactions=1500, seed=2),
                      "topk-random", seed=0)


def _weights(model) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.module_.state_dict().items()}


def _fast(**changes) -> TrainerConfig:
    base = {"epochs": 6, "lr": 0.02, "batch_size": 128, "patience": 0, "seed": 0,
            "num_threads": 1}
    return TrainerConfig(**{**base, **changes})


class _ItemBias(Trainable):
    """A Trainable that is not a recommender library model: one bias per item, fitted with BCE
    on positives vs uniform negatives. Shows the Trainer needs only the small protocol."""

    def build(self, split, config):
        self.module_ = torch.nn.Embedding(split.features.n_items, 1)
        torch.nn.init.zeros_(self.module_.weight)
        self.n_items = split.features.n_items
        return self.module_

    def training_batches(self, split, batch_size, rng):
        items = split.train.item
        for start in range(0, len(items), batch_size):
            pos = items[start:start + batch_size]
            neg = rng.integers(0, self.n_items, len(pos))
            yield (torch.from_numpy(np.concatenate([pos, neg])),
                   torch.from_numpy(np.r_[np.ones(len(pos)), np.zeros(len(neg))]).float())

    def loss(self, module, batch):
        items, labels = batch
        return torch.nn.functional.binary_cross_entropy_with_logits(module(items)[:, 0], labels)

    def score(self, users, items):
        with torch.no_grad():
            return self.module_.weight[torch.from_numpy(np.array(items))][:, 0].numpy()

    def recommend(self, users, k=10, exclude_seen=True):
        from fusionrec.models.common.ranking import recommend_by_scores

        row = self.module_.weight[:, 0].detach().numpy()
        return recommend_by_scores(lambda u: np.tile(row, (len(u), 1)), users, k, None, False)


def test_trainer_is_model_agnostic(split):
    model = _ItemBias()
    assert isinstance(model, Trainable)
    trainer = Trainer(_fast(epochs=4, lr=0.1), evaluate=evaluate, progress=False)
    assert trainer.fit(model, split) is model
    counts = np.bincount(split.train.item, minlength=split.features.n_items)
    learned = model.module_.weight[:, 0].detach().numpy()
    assert np.corrcoef(counts, learned)[0, 1] > 0.8  # popular items get high bias
    assert [r["epoch"] for r in trainer.summary_.history] == [1, 2, 3, 4]


def test_optimizer_state_round_trips_without_pickle():
    for optimizer_name in ("adamw", "sgd"):
        config = TrainerConfig(optimizer=optimizer_name, lr=0.1, momentum=0.9)
        torch.manual_seed(0)
        net = torch.nn.Linear(3, 2)
        opt = make_optimizer(config, net.parameters())
        for _ in range(3):
            opt.zero_grad()
            net(torch.randn(4, 3)).pow(2).sum().backward()
            opt.step()
        tensors, state = optimizer_to_flat(opt)
        json.dumps(state)  # JSON-ready
        twin = torch.nn.Linear(3, 2)
        twin.load_state_dict(net.state_dict())
        opt2 = make_optimizer(config, twin.parameters())
        optimizer_from_flat(opt2, tensors, json.loads(json.dumps(state)))
        x = torch.randn(4, 3)
        for model, optimizer in ((net, opt), (twin, opt2)):
            optimizer.zero_grad()
            model(x).pow(2).sum().backward()
            optimizer.step()
        torch.testing.assert_close(net.weight, twin.weight, rtol=0, atol=0)


def test_linear_warmup():
    config = TrainerConfig(lr=1.0, warmup_steps=4)
    assert [lr_at(config, s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert lr_at(TrainerConfig(lr=0.3), 0) == 0.3


def test_seeded_and_reproducible(split):
    a = BPRMF(embedding_dim=8, trainer=_fast(epochs=3), runner=RUNNER).fit(split)
    b = BPRMF(embedding_dim=8, trainer=_fast(epochs=3), runner=RUNNER).fit(split)
    c = BPRMF(embedding_dim=8, trainer=_fast(epochs=3, seed=1), runner=RUNNER).fit(split)
    for key, value in _weights(a).items():
        np.testing.assert_array_equal(value, _weights(b)[key])
    assert not np.array_equal(_weights(a)["user.weight"], _weights(c)["user.weight"])
    # The caller's global torch RNG is left alone.
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    BPRMF(embedding_dim=4, trainer=_fast(epochs=1), runner=RUNNER).fit(split)
    assert torch.rand(1) == expected


def test_early_stopping_restores_best_weights(split):
    seen = []
    trainer = Trainer(_fast(epochs=40, lr=0.05, patience=2), evaluate=evaluate, progress=False,
                      callbacks=[lambda epoch, record: seen.append(record["valid"]["ndcg@10"])])
    model = trainer.fit(BPRMF(embedding_dim=16, runner=RUNNER), split)
    summary = trainer.summary_
    assert summary.stopped_early and summary.epochs_run < 40
    assert summary.epochs_run - summary.best_epoch == 2
    assert summary.best_value == max(seen) == seen[summary.best_epoch - 1]
    assert evaluate(model, split, "valid")["ndcg@10"] == pytest.approx(summary.best_value)


def test_min_delta_ignores_gains_smaller_than_it(split):
    seen = []
    trainer = Trainer(_fast(epochs=40, lr=0.02, patience=3, min_delta=0.01), evaluate=evaluate,
                      progress=False,
                      callbacks=[lambda epoch, record: seen.append(record["valid"]["ndcg@10"])])
    trainer.fit(BPRMF(embedding_dim=16, runner=RUNNER), split)
    summary = trainer.summary_
    best, best_epoch, bad = None, 0, 0
    for epoch, value in enumerate(seen, start=1):  # replay the rule on the recorded curve
        if best is None or value > best + 0.01:
            best, best_epoch, bad = value, epoch, 0
        else:
            bad += 1
    assert summary.best_epoch == best_epoch and summary.best_value == best
    assert summary.stopped_early and bad == 3 == summary.epochs_run - best_epoch
    assert any(v > best for v in seen[best_epoch:])  # a gain under min_delta was ignored
    with pytest.raises(ValueError, match="min_delta"):
        TrainerConfig(min_delta=-0.1)


def test_lr_is_cut_when_the_valid_metric_stalls(split, tmp_path):
    config = _fast(epochs=30, lr=0.05, patience=4, lr_plateau_factor=0.5,
                   lr_plateau_patience=2)
    trainer = Trainer(config, evaluate=evaluate, run_dir=tmp_path / "a", progress=False)
    trainer.fit(BPRMF(embedding_dim=16, runner=RUNNER), split)
    history, summary = trainer.summary_.history, trainer.summary_
    best = max(r["valid"]["ndcg@10"] for r in history)
    bad, factor = 0, 1.0
    for record in history:  # each epoch's lr is the factor reached before that epoch
        assert record["lr"] == pytest.approx(0.05 * factor)
        if record["valid"]["ndcg@10"] > max([-1.0] + [r["valid"]["ndcg@10"] for r in
                                                      history[:record["epoch"] - 1]]):
            bad = 0
        else:
            bad += 1
            factor *= 0.5 if bad % 2 == 0 else 1.0
    assert summary.lr_factor == factor < 1 and summary.best_value == best
    state = json.loads((tmp_path / "a" / "checkpoints" / "last.json").read_text())
    assert state["lr_factor"] == factor  # a resumed run continues at the reduced lr
    with pytest.raises(ValueError, match="lr_plateau_factor"):
        TrainerConfig(lr_plateau_factor=0.0)


def test_sgd_with_momentum_warmup_and_dropout_lowers_the_training_loss(split):
    trainer = Trainer(_fast(optimizer="sgd", lr=0.5, momentum=0.9, grad_clip=0.5, dropout=0.2,
                            warmup_steps=5, epochs=4), evaluate=evaluate, progress=False)
    model = trainer.fit(BPRMF(embedding_dim=8, runner=RUNNER), split)
    losses = [record["train_loss"] for record in trainer.summary_.history]
    assert len(losses) == 4 and losses[-1] < losses[0] - 0.05  # BPR starts at log 2 ~ 0.69
    # the same model left at its initialisation (lr ~ 0) ranks near chance: ~0.14 vs ~0.27
    still = Trainer(_fast(optimizer="sgd", lr=1e-9, epochs=1), evaluate=evaluate,
                    progress=False).fit(
        BPRMF(embedding_dim=8, runner=RUNNER), split)
    ndcg = lambda m: evaluate(m, split, "valid", ks=(10,))["ndcg@10"]  # noqa: E731
    assert ndcg(model) > 1.5 * ndcg(still)


@pytest.mark.parametrize("clip", [1e-4, 0.0])
def test_grad_clip_bounds_every_sgd_step(split, clip):
    """Plain SGD moves the parameters by lr * |clipped grad| <= lr * clip per step, so the
    biases, which start at 0, end within lr * clip * steps of 0; unclipped they move far more."""
    trainer = Trainer(_fast(optimizer="sgd", lr=0.5, grad_clip=clip, epochs=1), evaluate=evaluate,
                      progress=False)
    model = trainer.fit(BPRMF(embedding_dim=8, runner=RUNNER), split)
    biases = torch.cat([model.module_.item_bias.detach(), model.module_.bias.detach()[None]])
    moved = float(torch.linalg.vector_norm(biases))
    bound = 0.5 * 1e-4 * trainer.summary_.step
    if clip:
        assert 0 < moved <= bound * (1 + 1e-5)
    else:
        assert moved > 100 * bound


def test_nan_loss_is_reported(split):
    class Broken(_ItemBias):
        def loss(self, module, batch):
            return module(batch[0]).sum() * float("nan")

    with pytest.raises(FloatingPointError, match="trainer.lr"):
        Trainer(_fast(epochs=1), evaluate=evaluate, progress=False).fit(Broken(), split)


def test_run_dir_telemetry_and_checkpoint(split, tmp_path):
    trainer = Trainer(_fast(epochs=3), evaluate=evaluate, run_dir=tmp_path, progress=True)
    trainer.fit(BPRMF(embedding_dim=8, runner=RUNNER), split)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2, 3]
    assert {"train_loss", "lr", "valid", "seconds", "step"} <= set(lines[0])
    assert "ndcg@10" in lines[0]["valid"]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert (tmp_path / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    state = json.loads((tmp_path / "checkpoints" / "last.json").read_text())
    assert state["epochs_run"] == 3 and state["history"] == lines
    assert [p.name for p in (tmp_path / "checkpoints").glob("*.safetensors")] == \
        ["epoch-0003.safetensors"]


class _Crash(Exception):
    pass


def _crash_at(epoch_to_crash):
    def callback(epoch, record):
        if epoch == epoch_to_crash:
            raise _Crash

    return callback


def test_resume_after_crash_matches_uninterrupted_run(split, tmp_path):
    config = _fast(epochs=6, patience=3, lr=0.05)
    ev = EvaluationConfig(ks=(5,))
    straight = Trainer(config, evaluate=evaluate,
                       evaluation=ev, run_dir=tmp_path / "a", progress=False)
    reference = straight.fit(BPRMF(embedding_dim=8, runner=RUNNER), split)

    with pytest.raises(_Crash):
        Trainer(config, evaluate=evaluate, evaluation=ev, run_dir=tmp_path / "b", progress=False,
                callbacks=[_crash_at(3)]).fit(BPRMF(embedding_dim=8, runner=RUNNER), split)
    resumed_trainer = Trainer(config, evaluate=evaluate,
                              evaluation=ev, run_dir=tmp_path / "b", resume=True,
                              progress=False)
    resumed = resumed_trainer.fit(BPRMF(embedding_dim=8, runner=RUNNER), split)

    for key, value in _weights(reference).items():
        np.testing.assert_array_equal(value, _weights(resumed)[key])
    assert evaluate(reference, split, "test") == evaluate(resumed, split, "test")
    untimed = lambda history: [{k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
                               for r in history]
    assert untimed(resumed_trainer.summary_.history) == untimed(straight.summary_.history)
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == list(range(1, len(lines) + 1))


def test_resume_refuses_changed_checkpoint(split, tmp_path):
    Trainer(_fast(epochs=2), evaluate=evaluate,
            run_dir=tmp_path, progress=False).fit(BPRMF(embedding_dim=4, runner=RUNNER), split)
    weights = next((tmp_path / "checkpoints").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ValueError, match="missing or changed"):
        Trainer(_fast(epochs=3), evaluate=evaluate, run_dir=tmp_path, resume=True,
                progress=False).fit(BPRMF(embedding_dim=4, runner=RUNNER), split)


def test_non_trainable_models_are_just_fitted(split):
    from fusionrec.models.baselines.popularity import Popularity

    trainer = Trainer(_fast(), evaluate=evaluate, progress=False)
    model = trainer.fit(Popularity(), split)
    assert hasattr(model, "counts_") and trainer.summary_.history == []


class _OwnSettings(_ItemBias):
    """A Trainable using the optional hooks: its own settings, its own validation (a fixed
    AUC schedule, so the stopping rule is what is tested) and a call when training ends."""

    def __init__(self, aucs):
        self.aucs, self.calls, self.finished = list(aucs), 0, None

    def training_config(self, config):
        return dataclasses.replace(config, epochs=5, patience=2, monitor="auc",
                                   validate_initial=True)

    def validation_metrics(self, split):
        self.calls += 1
        return {"auc": self.aucs[self.calls - 1]}

    def trained(self, summary):
        self.finished = summary


def test_model_hooks_and_initial_weights_competing(split, tmp_path):
    model = _OwnSettings([0.7, 0.6, 0.65, 0.9])
    trainer = Trainer(_fast(epochs=50, patience=0), evaluate=evaluate,
                      run_dir=tmp_path, progress=False)
    trainer.fit(model, split)
    summary = trainer.summary_
    # epoch 0 (the built weights) stays best; 2 epochs without beating it stop the run
    assert [r["epoch"] for r in summary.history] == [0, 1, 2] and model.calls == 3
    assert summary.best_epoch == 0 and summary.stopped_early and model.finished is summary
    assert torch.equal(model.module_.weight, torch.zeros_like(model.module_.weight))
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines[0] == {"epoch": 0, "step": 0, "lr": 0.02, "train_loss": None,
                        "valid": {"auc": 0.7}, "seconds": 0.0}
    assert (tmp_path / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_trainer_without_evaluate_refuses_to_train_blind(split):
    # Evaluation sits above training, so validation is handed in; a Trainer given none stops
    # at the first validation instead of silently training without early stopping.
    with pytest.raises(TrainerError, match="evaluate="):
        Trainer(_fast(epochs=2), progress=False).fit(BPRMF(embedding_dim=4, runner=RUNNER), split)
    no_valid = dataclasses.replace(split, valid=split.valid.take(np.arange(0)))
    Trainer(_fast(epochs=1), progress=False).fit(BPRMF(embedding_dim=4, runner=RUNNER), no_valid)


def test_torch_model_fit_runs_the_injected_trainer(split):
    with pytest.raises(ModelError, match="shared Trainer"):
        BPRMF(embedding_dim=4, trainer=_fast(epochs=2)).fit(split)
    runner = functools.partial(Trainer, evaluate=evaluate, progress=False)
    via_fit = BPRMF(embedding_dim=4, trainer=_fast(epochs=3, patience=1), runner=runner)
    assert via_fit.fit(split) is via_fit
    direct = BPRMF(embedding_dim=4, runner=RUNNER)
    Trainer(_fast(epochs=3, patience=1), evaluate=evaluate, progress=False).fit(direct, split)
    for key, value in _weights(direct).items():
        np.testing.assert_array_equal(_weights(via_fit)[key], value)
