"""Stage 1 of the cross-encoder's training, its precision choice and its batched scoring.

``fit_side_head`` fits the linear side head exactly (it is convex and tiny) and picks it on
validation; stage 2, the LM's fine-tuning with the side head fixed, runs in the shared
:class:`fusionrec.training.trainer.Trainer` through the recommender's Trainable methods, which
use ``autocast`` (bf16 only where it agrees with fp32, ``choose_precision``) and ``rows_auc``.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from fusionrec.devices import module_device, move
from fusionrec.metrics import auc_score
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


def rows_auc(net: CrossEncoderNet, rows: EncodedRows, batch_size: int, precision: str,
             pad_id: int, padding_side: str) -> float:
    """AUC of ``net``'s logits on labelled ``rows`` (the Trainer's validation metric)."""
    return auc_score(rows.labels, predict(net, rows, batch_size, precision, pad_id,
                                          padding_side))


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
