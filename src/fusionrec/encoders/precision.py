"""Pick the numeric precision for encoding: bf16 where the hardware runs it fast, else fp32.

On CPUs with AMX or AVX512-BF16, the mixed-precision twin (:mod:`mixed`: bf16 matmuls, fp32
norms and residual stream) runs MiniLM ~2.8-3.8x faster than fp32 at 1 thread with cosine
agreement >= 0.99996 on real texts of every preset. ``auto`` checks the hardware, then measures
both precisions on a sample of the very texts being encoded and keeps bf16 only if it is faster
*and* agrees with fp32 to :data:`ENCODE_AGREEMENT_FLOOR`; the measurement is recorded so a cache
says how its vectors were made.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

#: Minimum cosine between a bf16 and an fp32 output of the same input for bf16 to be used (the
#: cross-encoder's check on LM hidden states).
AGREEMENT_FLOOR = 0.999
#: The same floor for text embeddings (``choose_precision``): FusionRec's default encoding must
#: agree with fp32 to 0.9999 (measured minimum 0.99997 on 1,600 real texts, MiniLM).
ENCODE_AGREEMENT_FLOOR = 0.9999
#: bf16 must beat fp32 by this factor to be chosen (timings on a shared CPU are noisy).
MIN_SPEEDUP = 1.15
_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_bf16_feature() -> str | None:
    """``"amx_bf16"``/``"avx512_bf16"`` when /proc/cpuinfo lists it, else torch's oneDNN check
    (``"onednn_bf16"``), else ``None``."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
        flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                      if line.startswith("flags")), [])
        for flag in _BF16_FLAGS:
            if flag in flags:
                return flag
    except OSError:  # not Linux
        pass
    import torch

    try:
        if torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return "onednn_bf16"
    except (AttributeError, RuntimeError):
        pass
    return None


def autocast_context(precision: str, device: str):
    """The context manager to run a forward pass in ``precision`` on ``device`` (around the
    mixed-precision twin it changes nothing the twin already converted, and keeps any op it did
    not, such as eager attention's matmuls, in one dtype)."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)  # "cuda:1" too


def low_precision_copy(model, precision: str):
    """A twin of ``model`` whose matmul weights (``nn.Linear`` and GPT-2's ``Conv1D``) are
    stored in ``precision``; embeddings and norms are *shared* with ``model``, not copied.

    Run it under :func:`autocast_context`: numerics equal plain autocast, but weights are cast
    once here instead of on every forward (autocast's weight cache is off under
    ``torch.inference_mode``), and the fp32 original stays available as the reference.
    """
    import copy

    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    matmuls = [m for m in model.modules()
               if isinstance(m, torch.nn.Linear) or type(m).__name__ == "Conv1D"]
    cast_ids = {id(p) for m in matmuls for p in m.parameters(recurse=False)}
    shared = {id(p): p for p in model.parameters() if id(p) not in cast_ids}
    shared.update({id(b): b for b in model.buffers()})
    twin = copy.deepcopy(model, memo=shared)  # memo: shared tensors are reused, not copied
    for module in twin.modules():
        if isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D":
            module.to(dtype)
    return twin


def agreement(reference: np.ndarray, other: np.ndarray) -> dict:
    """Row-wise cosine between two embedding matrices: min, mean and the sample size."""
    a = reference / np.maximum(np.linalg.norm(reference, axis=1, keepdims=True), 1e-12)
    b = other / np.maximum(np.linalg.norm(other, axis=1, keepdims=True), 1e-12)
    cosine = np.sum(a * b, axis=1)
    return {"min_cosine": round(float(cosine.min()), 6),
            "mean_cosine": round(float(cosine.mean()), 6), "n": int(len(cosine))}


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str
    reason: str
    agreement: dict | None = None
    speedup: float | None = None

    def as_dict(self) -> dict:
        return {"precision": self.precision, "reason": self.reason,
                "agreement_vs_fp32": self.agreement, "speedup_vs_fp32": self.speedup}


def _timed(run: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    run()  # warm-up: the first bf16 call builds oneDNN kernels
    start = time.perf_counter()
    out = run()
    return out, time.perf_counter() - start


def choose_precision(requested: str, device: str, run: Callable[[str], np.ndarray],
                     measure_speed: bool = True,
                     floor: float = ENCODE_AGREEMENT_FLOOR) -> PrecisionChoice:
    """Decide the precision. ``run(precision)`` embeds the sample texts in that precision;
    ``auto`` keeps the low precision only if its minimum cosine to fp32 is >= ``floor``."""
    if requested == "fp32":
        return PrecisionChoice("fp32", "requested")
    if requested == "auto":
        if device == "cpu":
            feature = cpu_bf16_feature()
            if feature is None:
                return PrecisionChoice("fp32", "cpu has no fast bf16 (no amx/avx512_bf16)")
            candidate, why = "bf16", f"cpu has {feature}"
        else:
            import torch

            candidate = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
            why = f"{device} supports {candidate}"
    else:
        candidate, why = requested, "requested"
    if measure_speed and requested == "auto":
        reference, t_ref = _timed(lambda: run("fp32"))
        other, t_other = _timed(lambda: run(candidate))
        speedup = round(t_ref / max(t_other, 1e-9), 2)
    else:
        reference, other, speedup = run("fp32"), run(candidate), None
    agree = agreement(reference, other)
    if requested == "auto":
        if agree["min_cosine"] < floor:
            return PrecisionChoice("fp32", f"{candidate} disagrees with fp32", agree, speedup)
        if speedup is not None and speedup < MIN_SPEEDUP:
            return PrecisionChoice("fp32", f"{candidate} measured no faster", agree, speedup)
    return PrecisionChoice(candidate, why, agree, speedup)
