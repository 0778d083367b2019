"""A mixed-precision twin of a frozen language model for fast inference: bf16 matmuls, fp32
norms and residual stream.

Plain ``model.to(bfloat16)`` runs MiniLM ~4x faster than fp32 on AMX CPUs but keeps the
residual stream in bf16, and its embeddings drift to cosine ~0.9999 of fp32 (measured 0.99988
on Last.FM item texts). Autocast keeps the residual stream in fp32 (cosine ~0.99996) but casts
the input of *every* matmul again (q, k and v each cast the same tensor) and pays a broadcast
copy for each bias. The twin made here keeps autocast's numerics and drops that overhead:

- every ``nn.Linear`` (and GPT-2's ``Conv1D``) becomes a :class:`LowPrecisionLinear` that owns
  bf16 copies of its weight and bias (converted once) and casts its input to bf16; on CPU the
  bias add, and the exact GELU that follows a BERT-style ``intermediate.dense``, run inside the
  oneDNN matmul (the fp32 accumulator is rounded once, after the activation);
- norm modules (LayerNorm, RMSNorm) keep their fp32 weights and get an fp32 input, so their
  outputs, and hence every residual add (bf16 branch + fp32 stream -> fp32), stay fp32;
- attention runs on the bf16 q/k/v (SDPA accumulates in fp32); embeddings stay fp32.

The original model is not modified: the twin is a new module tree whose embeddings and norms
*share* the original's tensors and whose matmul weights are new bf16 tensors. The twin is for
inference only (the fused oneDNN op has no autograd); run it under
:func:`fusionrec.encoders.precision.autocast_context`, which costs nothing on these ops and keeps
any op the twin did not convert (e.g. eager attention's matmuls) consistent.
"""

from __future__ import annotations

import copy
import threading

import torch
from torch import nn

#: Activation names the oneDNN linear kernel can fuse (with its ``algorithm`` argument).
_FUSABLE = {"none": "", "gelu": "none"}  # "gelu" with algorithm "none" is the exact (erf) GELU
_NORM_NAMES = ("LayerNorm", "RMSNorm")


def _fused_linear_available(dtype: torch.dtype) -> bool:
    """Whether ``torch.ops.mkldnn._linear_pointwise`` runs ``dtype`` on this CPU (probed once
    on a tiny input: a private op may be missing or refuse a dtype)."""
    if dtype != torch.bfloat16 or not torch.backends.mkldnn.is_available():
        return False
    try:
        x = torch.ones(2, 4, dtype=dtype)
        out = torch.ops.mkldnn._linear_pointwise(x, torch.ones(3, 4, dtype=dtype),
                                                 torch.zeros(3, dtype=dtype), "gelu", [], "none")
    except (AttributeError, RuntimeError, NotImplementedError):
        return False
    expected = torch.nn.functional.gelu(torch.full((2, 3), 4.0))
    return bool(torch.allclose(out.float(), expected, rtol=1e-2))


class CastCache:
    """The last input cast to low precision, shared by the linears of one twin and emptied after
    each forward: q, k and v read the same fp32 tensor, which is then cast once, not thrice.
    One entry per thread: the encoder runs one twin on several threads at once (one batch
    each), and a shared entry would be overwritten and cleared by the other threads' passes."""

    def __init__(self) -> None:
        self._local = threading.local()  # .entry: (source, its version, cast)

    @property
    def _entry(self) -> tuple | None:
        return getattr(self._local, "entry", None)

    @_entry.setter
    def _entry(self, value: tuple | None) -> None:
        self._local.entry = value

    @staticmethod
    def _version(x: torch.Tensor) -> int | None:
        # Inference tensors keep no version counter; there identity alone decides (no model
        # changes a tensor in place between two projections of it).
        return None if x.is_inference() else x._version

    def __call__(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        if x.dtype == dtype:
            return x
        entry = self._entry
        # Holding ``source`` keeps its storage alive, so ``is`` cannot match a newer tensor.
        if (entry is not None and entry[0] is x and entry[1] == self._version(x)
                and entry[2].dtype == dtype):
            return entry[2]
        cast = x.to(dtype)
        self._entry = (x, self._version(x), cast)
        return cast

    def clear(self, *_args) -> None:
        """Forget the cached pair (also usable as a forward hook)."""
        self._entry = None


class LowPrecisionLinear(nn.Module):
    """``activation(x @ weight.T + bias)`` with ``weight``/``bias`` held in ``dtype`` and ``x``
    cast to ``dtype``; output in ``dtype``. ``fused``: run the bias and activation inside the
    oneDNN CPU matmul (falls back to ``F.linear`` + activation on other devices). ``cast``: a
    :class:`CastCache` shared with sibling linears (default: a private one)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype,
                 activation: str = "none", fused: bool = False,
                 cast: CastCache | None = None) -> None:
        super().__init__()
        if activation not in _FUSABLE:
            raise ValueError(f"activation must be one of {sorted(_FUSABLE)}, got {activation!r}")
        # (out_features, in_features), like nn.Linear; detached copies, never the caller's tensor
        self.weight = nn.Parameter(weight.detach().to(dtype, copy=True), requires_grad=False)
        self.bias = (None if bias is None
                     else nn.Parameter(bias.detach().to(dtype, copy=True), requires_grad=False))
        self.out_features, self.in_features = self.weight.shape
        self.activation = activation
        self.fused = fused
        self._cast = cast if cast is not None else CastCache()

    @classmethod
    def from_module(cls, module: nn.Module, dtype: torch.dtype, activation: str = "none",
                    fused: bool = False, cast: CastCache | None = None) -> "LowPrecisionLinear":
        weight = module.weight
        if type(module).__name__ == "Conv1D":  # GPT-2 stores (in_features, out_features)
            weight = weight.t()
        return cls(weight, module.bias, dtype, activation, fused, cast)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._cast(x, self.weight.dtype)
        if self.fused and x.device.type == "cpu":
            return torch.ops.mkldnn._linear_pointwise(x.contiguous(), self.weight, self.bias,
                                                      self.activation, [],
                                                      _FUSABLE[self.activation])
        out = nn.functional.linear(x, self.weight, self.bias)
        return nn.functional.gelu(out) if self.activation == "gelu" else out

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"dtype={self.weight.dtype}, activation={self.activation}, fused={self.fused}")


def _is_matmul(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.LayerNorm) or any(n in type(module).__name__
                                                   for n in _NORM_NAMES)


def _is_exact_gelu(module: nn.Module) -> bool:
    """``transformers``' ``GELUActivation`` (erf form, as in BERT) or ``nn.GELU()``."""
    if isinstance(module, nn.GELU):
        return module.approximate == "none"
    return (type(module).__name__ == "GELUActivation"
            and getattr(module, "act", None) is nn.functional.gelu)


def _upcast_input(_module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Forward pre-hook of a norm: compute it, and hence the residual stream, in fp32 (the
    input is the first positional argument, or ``hidden_states``/``input`` by keyword)."""
    if args:
        return (args[0].float(),) + tuple(args[1:]), kwargs
    for key in ("hidden_states", "input"):
        if key in kwargs:
            return args, {**kwargs, key: kwargs[key].float()}
    return args, kwargs


def mixed_precision_copy(model: nn.Module, dtype: torch.dtype = torch.bfloat16,
                         fuse: bool | None = None) -> nn.Module:
    """The inference twin of ``model`` described in the module docstring.

    ``fuse``: fuse bias and GELU into oneDNN matmuls (``None``: where this CPU supports it).
    BERT's pooler (dense + tanh over [CLS]) is dropped from the twin: no pooling mode reads it.
    """
    if fuse is None:
        fuse = _fused_linear_available(dtype)
    # Share every tensor: the twin gets its own module objects (so hooks and replaced children
    # stay in the twin) without copying a single weight of the original.
    memo = {id(t): t for t in list(model.parameters()) + list(model.buffers())}
    twin = copy.deepcopy(model, memo=memo)
    cast = CastCache()
    if getattr(twin, "pooler", None) is not None:
        twin.pooler = None
    for parent in list(twin.modules()):
        act = getattr(parent, "intermediate_act_fn", None)
        gelu = (isinstance(getattr(parent, "dense", None), nn.Linear) and act is not None
                and _is_exact_gelu(act))
        for name, child in list(parent.named_children()):
            if not _is_matmul(child):
                continue
            activation = "gelu" if gelu and name == "dense" else "none"
            setattr(parent, name, LowPrecisionLinear.from_module(child, dtype, activation, fuse,
                                                                   cast))
        if gelu:  # BERT-style intermediate: dense -> act; the act now lives in the dense
            parent.intermediate_act_fn = nn.Identity()
    twin.register_forward_hook(cast.clear)  # hold no activation between forward passes
    for module in twin.modules():
        if _is_norm(module):
            module.register_forward_pre_hook(_upcast_input, with_kwargs=True)
    # eval() flags only the twin's own module objects; requires_grad is left alone, since the
    # shared tensors belong to the caller (the new bf16 weights are created without grad).
    return twin.eval()


def uses_fused_kernels(model: nn.Module) -> bool:
    """Whether any linear of ``model`` runs through the fused oneDNN kernel."""
    return any(isinstance(m, LowPrecisionLinear) and m.fused for m in model.modules())
