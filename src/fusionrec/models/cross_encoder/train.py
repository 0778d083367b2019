"""Training and inference loops of the cross-encoder.

Two stages: (1) ``fit_side_head`` fits the linear side head exactly (it is convex and tiny) and
picks it on validation; (2) ``train_net`` fine-tunes the LM with the side head fixed.

A small loop of its own rather than the shared :class:`fusionrec.training.trainer.Trainer`:
that Trainer validates through ``evaluate`` -> ``model.score(users, items)``, which cannot pass
a few-shot record's own 10-item history, and it has no place for stage 1 or for bf16 autocast
decided by agreement with fp32. Same conventions otherwise: AdamW, epoch ``e`` shuffles with
``default_rng([seed, e])``, early stopping on validation AUC that restores the best weights.
"""

from __future__ import annotations

import contextlib
import math
import time

import numpy as np
import torch

from fusionrec.devices import module_device, move
from fusionrec.evaluation.metrics import auc_score
from fusionrec.models.cross_encoder.config import CrossEncoderConfig
from fusionrec.models.cross_encoder.net import CrossEncoderNet, EncodedRows, collate


def autocast(precision: str, device="cpu"):
    if precision == "bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def choose_precision(net: CrossEncoderNet, sample: EncodedRows, config: CrossEncoderConfig,
                     pad_id: int, padding_side: str) -> dict:
    """bf16 autocast only where the device runs it natively (a CPU with AMX or AVX-512 BF16, a
    GPU with bf16) and the LM's last hidden states under bf16 agree with fp32 (min cosine over
    a sample >= the encoders' floor)."""
    from fusionrec.encoders.precision import AGREEMENT_FLOOR, agreement, cpu_bf16_feature

    if net.lm is None or config.precision == "fp32":
        return {"precision": "fp32", "reason": "no LM" if net.lm is None else "requested"}
    device = module_device(net)
    if device.type == "cuda":
        feature = "bf16" if torch.cuda.is_bf16_supported() else None
    else:
        feature = cpu_bf16_feature()
    if config.precision == "auto" and feature is None:
        return {"precision": "fp32", "reason": f"{device.type} has no fast bf16"}
    batch = move(collate(sample.take(np.arange(min(len(sample), 8))), pad_id, padding_side),
                 device)
    tokens = {k: v for k, v in batch.items() if k != "side"}
    net.eval()
    outputs = {}
    with torch.no_grad():
        for precision in ("fp32", "bf16"):
            with autocast(precision, device):
                hidden = net.lm(**tokens, output_hidden_states=True).hidden_states[-1]
            outputs[precision] = hidden.float().mean(dim=1).cpu().numpy()   # (n, hidden)
    agree = agreement(outputs["fp32"], outputs["bf16"])
    if config.precision == "auto" and agree["min_cosine"] < AGREEMENT_FLOOR:
        return {"precision": "fp32", "reason": "bf16 disagrees with fp32", "agreement": agree}
    return {"precision": "bf16", "reason": f"{device.type} has {feature}"
            if config.precision == "auto"
            else "requested", "agreement": agree}


def predict(net: CrossEncoderNet, rows: EncodedRows, batch_size: int, precision: str,
            pad_id: int, padding_side: str, progress: bool = False) -> np.ndarray:
    """Logits ``(len(rows),)``; rows are batched longest first so padding stays small."""
    from tqdm.auto import tqdm

    out = np.zeros(len(rows), dtype=np.float64)
    order = np.argsort(-rows.lengths(), kind="stable")
    net.eval()
    device = module_device(net)
    starts = range(0, len(rows), batch_size)
    with torch.no_grad(), autocast(precision, device):
        for start in tqdm(starts, desc="scoring", disable=not progress or len(starts) < 4,
                          leave=False):
            picked = order[start:start + batch_size]
            logits = net(move(collate(rows.take(picked), pad_id, padding_side), device))
            out[picked] = logits.float().cpu().numpy()
    return out


def _param_groups(net: CrossEncoderNet, config: CrossEncoderConfig) -> list[dict]:
    """Only the LM trains here: the side head was fitted exactly beforehand (stage 1) and stays
    fixed, so the LM learns what the side features do not already explain."""
    lm = [p for p in (net.lm.parameters() if net.lm is not None else []) if p.requires_grad]
    return [{"params": lm, "lr": config.lr, "weight_decay": config.weight_decay}] if lm else []


def _snapshot(net: CrossEncoderNet) -> dict[str, torch.Tensor]:
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    return {n: t.detach().clone() for n, t in net.state_dict().items() if n in trainable}


def _calibrate(score: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Scale ``a >= 0`` and bias ``b`` of ``sigmoid(a * score + b)`` by 2-parameter logistic
    regression: probabilities become meaningful, the ranking (AUC) does not change."""
    params = torch.zeros(2, requires_grad=True)
    optimizer = torch.optim.LBFGS([params], lr=1.0, max_iter=100, line_search_fn="strong_wolfe")
    bce = torch.nn.BCEWithLogitsLoss()

    def closure():
        optimizer.zero_grad()
        loss = bce(params[0].exp() * score + params[1], y)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(params[0].detach().exp()), float(params[1].detach())


def fit_side_head(net: CrossEncoderNet, train: EncodedRows, valid: EncodedRows | None,
                  grid: tuple[float, ...]) -> dict:
    """Stage 1: the side head alone, fitted on ``train``; the valid AUC picks among

    - ``rule``: the prior (history positivity only), calibrated;
    - ``centroid``: ``w = Z^T (y - mean y) / n`` on standardised features ``Z``, calibrated --
      the limit of ridge logistic regression as its penalty grows, parameter-free and robust
      with a few dozen rows;
    - ``ridge``: logistic regression with ``mean BCE + l2 / n * ||w||^2`` (exact, full-batch
      L-BFGS), for each ``l2`` in ``grid``.

    Without valid rows the centroid is used. Ties go to the simpler candidate (listed first).
    """
    if net.side is None or len(train) == 0:
        return {"choice": None}
    z = (torch.as_tensor(train.side, dtype=torch.float32) - net.side_mean) / net.side_std
    y = torch.tensor(np.asarray(train.labels), dtype=torch.float32)
    candidates: list[tuple[str, float | None, torch.Tensor, float]] = []
    for name, direction in (("rule", net.prior), ("centroid", z.T @ (y - y.mean()) / len(y))):
        scale, bias = _calibrate(z @ direction, y)
        candidates.append((name, None, direction * scale, bias))
    if valid is not None and len(valid):
        bce = torch.nn.BCEWithLogitsLoss()
        for l2 in grid:
            with torch.no_grad():
                net.side.weight.zero_()
                net.side.bias.fill_(float(torch.logit(y.mean().clamp(0.01, 0.99))))
            optimizer = torch.optim.LBFGS(net.side.parameters(), lr=1.0, max_iter=200,
                                          line_search_fn="strong_wolfe")

            def closure(optimizer=optimizer, l2=l2):  # bound now: LBFGS calls it in this pass
                optimizer.zero_grad()
                loss = bce(net.side(z)[:, 0], y) + l2 / len(y) * (net.side.weight ** 2).sum()
                loss.backward()
                return loss

            optimizer.step(closure)
            candidates.append(("ridge", l2, net.side.weight[0].detach().clone(),
                               float(net.side.bias.detach())))
    results = []
    if valid is not None and len(valid):
        zv = (torch.as_tensor(valid.side, dtype=torch.float32) - net.side_mean) / net.side_std
        for _name, _l2, weight, _bias in candidates:
            results.append(auc_score(valid.labels, (zv @ weight).numpy()))
        best = int(np.argmax(np.nan_to_num(results, nan=-1.0)))  # first of equals: simplest
    else:
        best = 1
    name, l2, weight, bias = candidates[best]
    with torch.no_grad():
        net.side.weight.copy_(weight[None, :])
        net.side.bias.fill_(bias)
    return {"choice": name, "l2": l2, "side_valid_auc": results[best] if results else None,
            "candidates": [{"choice": c[0], "l2": c[1], "valid_auc": r}
                           for c, r in zip(candidates, results)]}


def train_net(net: CrossEncoderNet, train: EncodedRows, valid: EncodedRows | None,
              config: CrossEncoderConfig, precision: str, pad_id: int,
              padding_side: str, zero_head: bool = False) -> dict:
    """Stage 2: train the LM of ``net`` in place on ``train`` (labels set); early-stop on
    ``valid`` AUC.

    The untrained net (epoch 0) competes too, so when training on a handful of rows only
    hurts, the prior comes back (``zero_head``: the LM's head started at zero, so epoch 0's
    LM adds nothing and scoring can skip it). Returns the training summary.
    """
    from tqdm.auto import tqdm

    started = time.perf_counter()
    device = module_device(net)
    groups = _param_groups(net, config)
    optimizer = torch.optim.AdamW(groups) if groups else None
    labels = torch.tensor(np.asarray(train.labels), dtype=torch.float32)
    bce = torch.nn.BCEWithLogitsLoss()
    history: list[dict] = []
    best = {"epoch": 0, "auc": -math.inf, "state": None}
    bad = 0

    def validate(epoch: int, loss: float, seconds: float) -> bool:
        nonlocal bad
        record = {"epoch": epoch, "train_loss": loss, "seconds": round(seconds, 2)}
        if valid is not None and len(valid):
            logits = predict(net, valid, 2 * config.batch_size, precision, pad_id, padding_side)
            record["valid_auc"] = auc_score(valid.labels, logits)
            if record["valid_auc"] > best["auc"]:
                best.update(epoch=epoch, auc=record["valid_auc"], state=_snapshot(net))
                bad = 0
            else:
                bad += 1
        history.append(record)
        return bool(config.patience and bad >= config.patience)

    if valid is not None and len(valid):
        validate(0, float("nan"), 0.0)
    bar = tqdm(range(1, config.epochs + 1), desc="cross-encoder", disable=not config.progress)
    for epoch in bar:
        t0 = time.perf_counter()
        net.train()
        order = np.random.default_rng([config.seed, epoch]).permutation(len(train))
        losses = []
        for start in range(0, len(order), config.batch_size):
            rows = order[start:start + config.batch_size]
            with autocast(precision, device):
                logits = net(move(collate(train.take(rows), pad_id, padding_side), device))
            loss = bce(logits.float(), labels[rows].to(device))
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
                optimizer.step()
            losses.append(float(loss.detach()))
        stop = validate(epoch, float(np.mean(losses)), time.perf_counter() - t0)
        bar.set_postfix(loss=f"{history[-1]['train_loss']:.4f}",
                        **({"valid_auc": f"{history[-1]['valid_auc']:.4f}"}
                           if "valid_auc" in history[-1] else {}))
        if stop:
            break
    if best["state"] is not None:
        net.load_state_dict(best["state"], strict=False)
        if best["epoch"] == 0 and zero_head:
            net.lm_active = False
    return {"epochs_run": history[-1]["epoch"] if history else 0, "lm_active": net.lm_active,
            "best_epoch": best["epoch"] if best["state"] is not None else None,
            "best_valid_auc": best["auc"] if best["state"] is not None else None,
            "history": history, "train_seconds": round(time.perf_counter() - started, 2)}
