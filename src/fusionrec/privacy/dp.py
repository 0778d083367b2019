"""Differentially private training of the fusion head (DP-SGD, Opacus).

``fit_private_head(model, split, DPConfig(...))`` re-trains a fitted fusion model's *scorer*
(fusion layers + CTR/retrieval heads) from a fresh initialisation with DP-SGD over the model's
frozen per-source tables, and reports the privacy spent: epsilon for the chosen delta.

- Per-example gradients come from ``torch.func`` (``vmap`` over ``grad``), so every fusion
  kind and head works; clipping, Gaussian noise and the RDP accountant are Opacus's
  (``DPOptimizer``, ``RDPAccountant``). Batches are Poisson-sampled, as the accounting assumes.
- The privacy unit is one training example: a labelled (user, item) row for CTR protocols, a
  positive (user, item) pair with its sampled negative for top-K ones. A user with ``k`` such
  rows is protected at about ``k * epsilon`` (group privacy).
- Scope: the guarantee covers the head's weights. The per-source tables it reads were built by
  the non-private training run (ID propagation, user profiles over training items), so the
  model as a whole is private only when its tables are (e.g. item-side text, KG and attribute
  sources). ``DPReport.covers`` says so in every report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from fusionrec.errors import FusionRecError
from fusionrec.extras import require


class DPError(FusionRecError, ValueError):
    """The model has no head the DP head can re-train (only fusion models do)."""


@dataclass(frozen=True)
class DPConfig:
    noise_multiplier: float = 1.0   # std of the noise, in units of max_grad_norm
    max_grad_norm: float = 1.0      # per-example gradient clipping bound
    delta: float | None = None      # default: 1 / (10 * number of examples)
    epochs: int = 5
    batch_size: int = 256           # expected (Poisson) batch size
    lr: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {"noise_multiplier": self.noise_multiplier > 0,
                  "max_grad_norm": self.max_grad_norm > 0, "epochs": self.epochs >= 1,
                  "batch_size": self.batch_size >= 1, "lr": self.lr > 0,
                  "delta": self.delta is None or 0 < self.delta < 1}
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"dp.{name} is out of range: {getattr(self, name)!r}")


@dataclass(frozen=True)
class DPReport:
    epsilon: float
    delta: float
    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    steps: int
    examples: int
    covers: str = ("the fusion head's weights (fusion layers and heads), per training example; "
                   "not the per-source tables, which the non-private run built")

    def to_dict(self) -> dict:
        return asdict(self)


def _examples(split, seen, n_items: int, rng: np.random.Generator):
    """``(users, items, negatives, labels)``: CTR rows as labelled; top-K positives each with
    one uniformly drawn item the user has not seen as its negative."""
    train = split.train
    if split.task == "ctr":
        return train.user, train.item, train.item, train.label.astype(np.float32)
    pos = train.positives()
    negatives = rng.integers(0, n_items, size=len(pos))
    for _ in range(10):  # redraw the few that hit a seen item
        clash = np.array([np.isin(j, seen.items_of(u)) for u, j in zip(pos.user, negatives)],
                         dtype=bool)
        if not clash.any():
            break
        negatives[clash] = rng.integers(0, n_items, size=int(clash.sum()))
    return pos.user, pos.item, negatives, np.ones(len(pos), np.float32)


def fit_private_head(model, split, config: DPConfig = DPConfig()) -> DPReport:
    """Replace ``model``'s scorer by one trained with DP-SGD; returns the privacy report."""
    from fusionrec.models.servable import PrivateHead

    if not isinstance(model, PrivateHead):  # declared, so refused before any extra is needed
        raise DPError(f"the DP head re-trains a fusion model's scorer over its frozen tables; "
                      f"a {model.name!r} model has no such head (its vectors "
                      "are its weights)")
    require("dp", "the DP head")
    import torch
    import torch.nn.functional as F
    from opacus.accountants import RDPAccountant
    from opacus.optimizers import DPOptimizer
    from torch.func import functional_call, grad, vmap

    torch.manual_seed(config.seed)  # before the fresh scorer draws its initial weights
    head = model.head_inputs()
    tables, scorer = head.tables, head.scorer
    rng = np.random.default_rng(config.seed)
    users, items, negatives, labels = (torch.as_tensor(np.array(a)) for a in _examples(
        split, head.seen, head.n_items, rng))
    n = len(users)
    delta = config.delta or 1.0 / (10 * n)
    ctr_task = split.task == "ctr"

    def loss_one(params, u, i, j, y):
        """One example's loss (``u, i, j, y`` are scalars under ``vmap``)."""
        negatives = None if ctr_task else j.reshape(1, 1)
        out = functional_call(scorer, params, (tables, u.reshape(1), i.reshape(1), negatives))
        if ctr_task:
            logit = out["ctr"] if "ctr" in out else out["positive"]
            return F.binary_cross_entropy_with_logits(logit, y.reshape(1))
        loss = torch.zeros(())
        if "ctr" in out:
            loss = loss + F.binary_cross_entropy_with_logits(out["ctr"], torch.ones(1)) \
                + F.binary_cross_entropy_with_logits(out["ctr_negative"].reshape(1),
                                                     torch.zeros(1))
        if "positive" in out:
            loss = loss - F.logsigmoid(out["positive"] - out["negative"].reshape(1)).sum()
        return loss

    per_example = vmap(grad(loss_one), in_dims=(None, 0, 0, 0, 0), randomness="different")
    sample_rate = min(1.0, config.batch_size / n)
    optimizer = DPOptimizer(torch.optim.SGD(scorer.parameters(), lr=config.lr),
                            noise_multiplier=config.noise_multiplier,
                            max_grad_norm=config.max_grad_norm,
                            expected_batch_size=max(1, int(round(sample_rate * n))))
    accountant = RDPAccountant()
    optimizer.attach_step_hook(accountant.get_optimizer_hook_fn(sample_rate=sample_rate))
    steps_per_epoch = max(1, int(round(1 / sample_rate)))
    scorer.train()
    steps = 0
    for _ in range(config.epochs):
        for _ in range(steps_per_epoch):
            pick = torch.as_tensor(np.flatnonzero(rng.random(n) < sample_rate))
            if not len(pick):  # an empty Poisson batch still spends a (noise-only) step
                pick = torch.zeros(1, dtype=torch.long)
                weight = 0.0
            else:
                weight = 1.0
            params = {k: p.detach() for k, p in scorer.named_parameters()}
            grads = per_example(params, users[pick], items[pick], negatives[pick], labels[pick])
            optimizer.zero_grad(set_to_none=True)
            for name, p in scorer.named_parameters():
                p.grad_sample = grads[name] * weight
            optimizer.step()
            steps += 1
    scorer.eval()
    model.replace_head(scorer)
    return DPReport(float(accountant.get_epsilon(delta)), float(delta), config.noise_multiplier,
                    config.max_grad_norm, float(sample_rate), steps, int(n))


def private_run(run_dir, out_dir, config: DPConfig = DPConfig(), data_dir: str | None = None
                ) -> tuple[DPReport, dict]:
    """Copy the fusion run ``run_dir`` to ``out_dir`` with its head re-trained by DP-SGD;
    returns ``(report, test metrics)``. The report goes to the manifest (``privacy.dp``)."""
    import json
    import shutil
    from pathlib import Path

    from fusionrec.evaluation.evaluate import evaluate
    from fusionrec.training import artifacts
    from fusionrec.training.run import evaluation_kwargs, load_run_split

    from fusionrec.models.servable import PrivateHead

    run_config, manifest, model = artifacts.open_run(run_dir)
    if not isinstance(model, PrivateHead):
        raise DPError(f"{run_dir} holds a {model.name!r} model; the DP head "
                      "re-trains a fusion model's scorer and is for fusion runs")
    _, split = load_run_split(run_dir, run_config, manifest, data_dir)
    report = fit_private_head(model, split, config)
    out = Path(out_dir)
    shutil.copytree(run_dir, out, ignore=shutil.ignore_patterns("checkpoints", "events.sqlite3*"))
    model.save(out)
    metrics = {"test": evaluate(model, split, "test", **evaluation_kwargs(run_config))}
    path = out / artifacts.MANIFEST_FILE
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["metrics_non_private"] = manifest.get("metrics", {})
    manifest["metrics"] = metrics
    manifest.setdefault("privacy", {})["dp"] = {**report.to_dict(), "config": asdict(config)}
    manifest["files"] = {name: artifacts.file_sha256(out / name)
                         for name in artifacts._artefact_names(out)}
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return report, metrics["test"]
