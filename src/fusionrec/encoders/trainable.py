"""How much of a language model trains: ``frozen``, ``top_k``, ``lora``, ``prefix``, ``full``.

Shared by every model that fine-tunes an LM (the cross-encoder's classification LM, the fusion
model's text encoder): :func:`apply_tuning` freezes or wraps a loaded transformers model for a
mode, :func:`save_tuned` writes only what trained (a PEFT adapter on its own, or the trained
tensors as safetensors) and :func:`attach_tuned` puts it back onto a freshly loaded base model.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Sequence

import torch

from fusionrec.encoders.tuning import PEFT_MODES, LMTuning

#: Where ``top_k``/``full`` keep the trained tensors (PEFT modes keep PEFT's own files).
TRAINED_FILE = "trained.safetensors"
#: Modules after the last block that train with the top blocks when the model has them.
_FINAL_MODULES = ("pooler", "ln_f", "norm", "final_layer_norm")


@contextlib.contextmanager
def quiet_transformers():
    """transformers 5 prints a load report listing e.g. a new classification head as missing;
    that is expected here, so keep its log to errors while loading."""
    from transformers.utils import logging

    before = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(before)


class PrefixForward(torch.nn.Module):
    """Runs a PEFT prefix-tuning model by handing its learned per-layer key/value prefixes to
    the base model as ``cache``.

    peft 0.21 looks for a ``past_key_values`` argument, which transformers 5 renamed to
    ``cache``, so ``PeftModel.forward`` refuses every model; this does the same step itself:
    build the prefix cache, widen the attention mask by the virtual tokens, call the base model.
    """

    def __init__(self, peft_model) -> None:
        super().__init__()
        self.peft = peft_model

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        n = input_ids.shape[0]
        virtual = self.peft.active_peft_config.num_virtual_tokens
        prefix = torch.ones(n, virtual, dtype=attention_mask.dtype, device=attention_mask.device)
        return self.peft.base_model(input_ids=input_ids, cache=self.peft.get_prompt(batch_size=n),
                                    attention_mask=torch.cat([prefix, attention_mask], 1),
                                    **kwargs)

    def save_pretrained(self, directory: str) -> None:
        self.peft.save_pretrained(directory)


def layer_list(model) -> torch.nn.ModuleList:
    """The model's stack of transformer blocks (the longest ModuleList)."""
    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    if not lists:
        raise ValueError(f"cannot find the transformer layers of {type(model).__name__}")
    return max(lists, key=len)


def _peft_wrap(model, tuning: LMTuning, task_type: str, modules_to_save, label: str):
    from peft import LoraConfig, PrefixTuningConfig, TaskType, get_peft_model

    task = getattr(TaskType, task_type)
    if tuning.mode == "lora":
        peft_config = LoraConfig(task_type=task, r=tuning.lora_r, lora_alpha=tuning.lora_alpha,
                                 lora_dropout=tuning.lora_dropout,
                                 modules_to_save=modules_to_save)
    else:
        peft_config = PrefixTuningConfig(task_type=task, num_virtual_tokens=tuning.prefix_tokens,
                                         modules_to_save=modules_to_save)
    try:
        wrapped = get_peft_model(model, peft_config)
    except ValueError as error:
        raise ValueError(f"{label} mode {tuning.mode!r} does not support "
                         f"{type(model).__name__}: {error}") from None
    return PrefixForward(wrapped) if tuning.mode == "prefix" else wrapped


def apply_tuning(network, tuning: LMTuning, task_type: str = "FEATURE_EXTRACTION",
                 heads: Sequence[torch.nn.Module] = (), modules_to_save: list[str] | None = None,
                 label: str = "LM") -> torch.nn.Module:
    """Freeze / wrap ``network`` for ``tuning.mode``; returns the module to run and train.

    ``heads``: modules of the caller's that train in every non-PEFT mode (a classification
    head); ``modules_to_save``: names PEFT trains in full next to the adapter; ``task_type``: a
    ``peft.TaskType`` name; ``label`` prefixes error messages.
    """
    if tuning.mode in PEFT_MODES:
        return _peft_wrap(network, tuning, task_type, modules_to_save, label)
    for parameter in network.parameters():
        parameter.requires_grad = tuning.mode == "full"
    if tuning.mode == "full":
        return network
    train = list(heads)
    if tuning.mode == "top_k":
        layers = layer_list(network)
        if tuning.top_k > len(layers):
            raise ValueError(f"{label}: cannot unfreeze the top {tuning.top_k} layers, the model "
                             f"has {len(layers)}")
        train += list(layers[-tuning.top_k:])
        base = getattr(network, "base_model", network)
        train += [getattr(base, n) for n in _FINAL_MODULES if getattr(base, n, None) is not None]
    for module in train:
        for parameter in module.parameters():
            parameter.requires_grad = True
    return network


def trainable_count(model) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def save_tuned(model, mode: str, directory: Path) -> None:
    """What trained in ``model`` (as returned by :func:`apply_tuning`) into ``directory``: the
    PEFT adapter alone (``adapter_model.safetensors`` + ``adapter_config.json``), or the trained
    tensors in :data:`TRAINED_FILE` (every LM weight for ``full``)."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    if mode in PEFT_MODES:
        model.save_pretrained(str(directory))
        return
    trained = {n: p.detach().cpu().contiguous().clone() for n, p in model.named_parameters()
               if p.requires_grad}
    save_file(trained, str(directory / TRAINED_FILE))


def check_base_weights(directory, model: str, now: str, trained_on: str) -> None:
    """Saved tuned weights only fit the base model they were trained on."""
    if now != trained_on:
        raise ValueError(f"{directory}: the base model {model!r} now has weights hash {now}, "
                         f"but this model was trained on {trained_on}; refusing to mix them")


def attach_tuned(base, mode: str, directory: Path):
    """Inverse of :func:`save_tuned` on a freshly loaded ``base`` model (mode not applied);
    returns the module to run (PEFT-wrapped for ``lora`` / ``prefix``), in inference form."""
    from safetensors.torch import load_file

    if mode in PEFT_MODES:
        from peft import PeftModel

        wrapped = PeftModel.from_pretrained(base, str(directory))
        return PrefixForward(wrapped) if mode == "prefix" else wrapped
    trained = load_file(str(directory / TRAINED_FILE))
    params = dict(base.named_parameters())
    missing = sorted(set(trained) - set(params))
    if missing:
        raise ValueError(f"{directory / TRAINED_FILE}: tensors {missing[:3]} do not belong to "
                         "the base model")
    with torch.no_grad():
        for name, value in trained.items():
            params[name].copy_(value)
    return base
