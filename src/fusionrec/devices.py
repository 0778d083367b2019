"""The one device setting, ``trainer.device``: ``auto | cpu | cuda | cuda:N``.

Every torch model, the encoder and evaluation resolve it here, once, into a ``torch.device``
and are handed that value; nothing else reads ``torch.cuda`` to decide where work runs.
``auto`` is CUDA (the current device) when torch sees a GPU, else the CPU. Asking for CUDA on a
machine without one is a one-line :class:`DeviceError`, never a silent fall-back to the CPU.

This module sits below every layer that holds tensors (it imports only ``fusionrec.errors``),
so models, encoders and the trainer can all use it; torch is imported only when a device is
resolved, keeping config validation light.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from fusionrec.errors import FusionRecError

DEVICE_CHOICES = "auto | cpu | cuda | cuda:N"
_SPEC = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class DeviceError(FusionRecError, ValueError):
    """A device that cannot be used here (no GPU, index out of range, unknown spec): the CLI
    reports it in one line."""


def device_spec_error(spec: Any) -> str | None:
    """Why ``spec`` is not a device setting (``None`` when it is one); needs no torch."""
    if not isinstance(spec, str) or not _SPEC.match(spec):
        return f"must be {DEVICE_CHOICES}"
    return None


def resolve_device(spec: str = "auto"):
    """``spec`` as a ``torch.device`` that exists on this machine.

    ``auto`` -> ``cuda:<current>`` when a GPU is visible, else ``cpu``; ``cuda`` -> the current
    GPU (under torchrun each rank has set its own); ``cuda:N`` -> that GPU."""
    import torch

    if isinstance(spec, torch.device):
        spec = str(spec)
    problem = device_spec_error(spec)
    if problem:
        raise DeviceError(f"device {problem}, got {spec!r}")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        spec = "cuda"
    if not torch.cuda.is_available():
        raise DeviceError(f"device {spec!r} asked for, but torch {torch.__version__} sees no "
                          "CUDA GPU here; use device: cpu or auto")
    index = torch.cuda.current_device() if spec == "cuda" else int(spec.split(":")[1])
    if index >= torch.cuda.device_count():
        raise DeviceError(f"device {spec!r} asked for, but only {torch.cuda.device_count()} "
                          "CUDA GPU(s) are visible")
    return torch.device("cuda", index)


def map_tensors(value: Any, fn) -> Any:
    """``value`` with ``fn`` applied to every tensor inside it: tensors (dense or sparse),
    frozen dataclasses (rebuilt, other fields kept), tuples, namedtuples, lists and dicts;
    anything else is returned as is."""
    import torch

    if isinstance(value, torch.Tensor):
        return fn(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: map_tensors(getattr(value, f.name), fn)
                  for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **fields)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple
        return type(value)(*(map_tensors(v, fn) for v in value))
    if isinstance(value, (tuple, list)):
        return type(value)(map_tensors(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: map_tensors(v, fn) for k, v in value.items()}
    return value


def move(value: Any, device) -> Any:
    """``value`` (see :func:`map_tensors`) with every tensor on ``device``; on the CPU,
    CPU tensors are returned unchanged (no copy, no new objects)."""
    import torch

    device = torch.device(device)
    if device.type == "cpu" and _all_on_cpu(value):
        return value
    return map_tensors(value, lambda t: t.to(device))


def _all_on_cpu(value: Any) -> bool:
    found = []
    map_tensors(value, lambda t: found.append(t.device.type != "cpu"))
    return not any(found)


def module_device(module) -> Any:
    """The device of ``module``'s first parameter or buffer (the CPU for an empty module)."""
    import torch

    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def device_name(device) -> str:
    """A human name for reports: the GPU's model, or ``cpu``."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"
