"""Mixed precision for training steps (``trainer.precision``), on the CPU and on CUDA.

``bf16`` runs the step's matrix products (``mm``, ``addmm``, ``linear``...) in bfloat16 under
``torch.autocast`` for the step's device; parameters, optimiser state, element-wise work and
anything a model adds to a product's output (a bias, a softmax) stay float32. On CPUs with AMX
that makes a full-softmax retrieval step's ``(batch x n_items)`` products about 5x faster, but
the casts and the float32 softmax around them keep the whole step's gain small (1.13x on the
Last.FM top-K config, ``benchmarks/train_precision.py``). ``auto`` is bf16 on a CUDA device
that supports it (Ampere and later) and fp32 elsewhere. A GPU without bf16 asked for ``bf16``
is an error rather than a silent fp16. Validation and scoring always run in float32.
"""

from __future__ import annotations

import contextlib

from fusionrec.precision import TRAINING_PRECISIONS


def resolved_precision(precision: str, device="cpu") -> str:
    """``fp32`` or ``bf16``: what ``precision`` means on ``device``."""
    import torch

    if precision not in TRAINING_PRECISIONS:
        raise ValueError(f"unknown trainer.precision {precision!r}; "
                         f"expected one of {TRAINING_PRECISIONS}")
    on_cuda = torch.device(device).type == "cuda"
    if precision == "auto":
        return "bf16" if on_cuda and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "bf16" and on_cuda and not torch.cuda.is_bf16_supported():
        raise ValueError(f"trainer.precision bf16: {torch.cuda.get_device_name(device)} has no "
                         "bfloat16; use precision fp32 or auto")
    return precision


def training_autocast(precision: str, device="cpu"):
    """The context a training step's forward pass and loss run in on ``device``."""
    import torch

    if resolved_precision(precision, device) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
