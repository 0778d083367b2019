"""Mixed precision for training steps (``trainer.precision``).

``bf16`` runs the step's matrix products (``mm``, ``addmm``, ``linear``...) in bfloat16 under
``torch.autocast``; parameters, optimiser state, element-wise work and anything a model adds
to a product's output (a bias, a softmax) stay float32. On CPUs with AMX that makes a
full-softmax retrieval step's ``(batch x n_items)`` products about 5x faster, but the casts and
the float32 softmax around them keep the whole step's gain small (1.13x on the Last.FM top-K
config, ``benchmarks/train_precision.py``). Validation and scoring always run in float32.
"""

from __future__ import annotations

import contextlib

from fusionrec.precision import TRAINING_PRECISIONS


def training_autocast(precision: str):
    """The context a training step's forward pass and loss run in."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    raise ValueError(f"unknown trainer.precision {precision!r}; "
                     f"expected one of {TRAINING_PRECISIONS}")
