"""The language model: load it offline with a one-logit classification head, then decide what
trains (``lora``, ``prefix``, ``top_k``, ``full``, ``frozen``)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch

from fusionrec.models.cross_encoder.config import CrossEncoderConfig


@dataclass
class LoadedLM:
    tokenizer: Any
    model: Any          # a transformers model, or a peft.PeftModel wrapping one
    model_id: str
    path: str
    weights_hash: str
    is_decoder: bool


@contextlib.contextmanager
def _quiet_transformers():
    """transformers 5 prints a load report listing the (new) classification head as missing;
    that is expected here, so keep the log to errors while loading."""
    from transformers.utils import logging

    before = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(before)


def head_linear(model):
    """The last linear layer of a (plain, un-wrapped) model's sequence-classification head:
    ``classifier`` / ``score``, or their ``out_proj``."""
    import torch

    for name in ("classifier", "score"):
        module = getattr(model, name, None)
        module = getattr(module, "out_proj", module)
        if isinstance(module, torch.nn.Linear):
            return module
    raise ValueError(f"{type(model).__name__} has no classifier/score head")


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


def _layer_list(model):
    """The model's stack of transformer blocks (the longest ModuleList)."""
    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    if not lists:
        raise ValueError(f"cannot find the transformer layers of {type(model).__name__}")
    return max(lists, key=len)


def apply_mode(model, config: CrossEncoderConfig):
    """Freeze / wrap ``model`` for ``config.mode``; returns the module to train."""
    mode = config.mode
    if mode in ("lora", "prefix"):
        from peft import LoraConfig, PrefixTuningConfig, TaskType, get_peft_model

        # BERT's pooler (dense + tanh over [CLS]) sits between the encoder and the head; in
        # sentence-transformers checkpoints it was never trained, so it trains with the head
        base = getattr(model, "base_model", model)
        pooler = ["pooler"] if getattr(base, "pooler", None) is not None else None
        if mode == "lora":
            peft_config = LoraConfig(task_type=TaskType.SEQ_CLS, r=config.lora_r,
                                     lora_alpha=config.lora_alpha,
                                     lora_dropout=config.lora_dropout, modules_to_save=pooler)
        else:
            peft_config = PrefixTuningConfig(task_type=TaskType.SEQ_CLS,
                                             num_virtual_tokens=config.prefix_tokens,
                                             modules_to_save=pooler)
        try:
            wrapped = get_peft_model(model, peft_config)
        except ValueError as error:
            raise ValueError(f"cross-encoder mode {mode!r} does not support "
                             f"{type(model).__name__}: {error}") from None
        return PrefixForward(wrapped) if mode == "prefix" else wrapped
    for parameter in model.parameters():
        parameter.requires_grad = mode == "full"
    if mode == "full":
        return model
    head = [getattr(model, n) for n in ("classifier", "score") if hasattr(model, n)]
    if mode == "top_k":
        layers = _layer_list(model)
        if config.top_k_layers > len(layers):
            raise ValueError(f"cross-encoder top_k_layers={config.top_k_layers} but the model "
                             f"has {len(layers)} layers")
        head += list(layers[-config.top_k_layers:])
        base = getattr(model, "base_model", model)
        head += [getattr(base, n) for n in ("pooler", "ln_f", "norm", "final_layer_norm")
                 if getattr(base, n, None) is not None]
    for module in head:
        for parameter in module.parameters():
            parameter.requires_grad = True
    return model


def load_lm(config: CrossEncoderConfig, zero_head: bool, apply: bool = True) -> LoadedLM:
    """Tokenizer and classification model of ``config.model`` (offline), mode applied.

    ``zero_head``: start the head's last layer at zero, so the untrained cross-encoder adds
    nothing to the hybrid head's prior (its output starts as the history-positivity rule).
    ``apply=False`` leaves the mode unapplied (loading saved PEFT adapters does it).
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from fusionrec.encoders.hf import _is_decoder
    from fusionrec.encoders.resolve import resolve_model

    resolved = resolve_model(config.model)
    with _quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(str(resolved.path), local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(
            str(resolved.path), num_labels=1, local_files_only=True)
    decoder = _is_decoder(model.config)
    if tokenizer.pad_token is None:  # GPT-style tokenizers have none; the head needs one
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    if zero_head:
        with torch.no_grad():
            linear = head_linear(model)
            linear.weight.zero_()
            if linear.bias is not None:
                linear.bias.zero_()
    if apply:
        model = apply_mode(model, config)
    return LoadedLM(tokenizer, model, resolved.model_id, str(resolved.path),
                    resolved.weights_hash, decoder)


def trainable_count(model) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())
