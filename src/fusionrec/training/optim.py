"""Optimiser construction, the warm-up schedule, and optimiser state as flat tensors + JSON.

The optimiser state is split so a checkpoint needs no pickle: every tensor (Adam moments, step
counters, SGD momentum) goes to safetensors under ``optim.<param>.<name>``; every other value
(param-group hyper-parameters) goes to JSON.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from fusionrec.config import TrainerConfig

_PREFIX = "optim."


def make_optimizer(config: TrainerConfig,
                   parameters: Iterable[torch.nn.Parameter] | Iterable[dict]
                   ) -> torch.optim.Optimizer:
    """AdamW or SGD over the trainable ``parameters``: tensors, or param groups (dicts with
    ``params`` and optionally their own ``lr``). A group's ``lr`` is kept as its ratio to
    ``config.lr`` (``lr_scale``), so the warm-up schedule of :func:`lr_at` scales every group."""
    parameters = list(parameters)
    if not parameters or not isinstance(parameters[0], dict):
        parameters = [{"params": parameters}]
    groups = []
    for group in parameters:
        params = [p for p in group["params"] if p.requires_grad]
        if params:
            scale = group.get("lr", config.lr) / config.lr
            groups.append({**group, "params": params, "lr": config.lr * scale,
                           "lr_scale": scale})
    if not groups:
        raise ValueError("the model has no trainable parameters")
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(groups, lr=config.lr, weight_decay=config.weight_decay,
                           momentum=config.momentum)


def lr_at(config: TrainerConfig, step: int) -> float:
    """Learning rate for optimiser step ``step`` (0-based): linear warm-up, then constant."""
    if config.warmup_steps and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    return config.lr


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the base learning rate; each group runs at ``lr`` times its ``lr_scale``."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def optimizer_to_flat(optimizer: torch.optim.Optimizer
                      ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(tensors, json_state)`` holding everything ``optimizer.state_dict()`` holds."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{_PREFIX}{index}.{name}"] = value.detach().cpu().clone()
            elif value is not None:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_flat(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                        json_state: dict[str, Any]) -> None:
    """Inverse of :func:`optimizer_to_flat`; loads into ``optimizer`` in place."""
    per_param: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(_PREFIX):
            index, name = key[len(_PREFIX):].split(".", 1)
            per_param.setdefault(int(index), {})[name] = value
    for index, values in json_state.get("scalars", {}).items():
        per_param.setdefault(int(index), {}).update(values)
    groups = [{key: tuple(value) if isinstance(value, list) and key != "params" else value
               for key, value in group.items()} for group in json_state["param_groups"]]
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})
