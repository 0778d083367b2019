"""The language model: load it offline with a one-logit classification head, then decide what
trains (``lora``, ``prefix``, ``top_k``, ``full``, ``frozen``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from fusionrec.encoders.trainable import apply_tuning, quiet_transformers
from fusionrec.encoders.tuning import LMTuning
from fusionrec.models.cross_encoder.config import CrossEncoderConfig


@dataclass
class LoadedLM:
    tokenizer: Any
    model: Any          # a transformers model, or a peft.PeftModel wrapping one
    model_id: str
    path: str
    weights_hash: str
    is_decoder: bool


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


def apply_mode(network, config: CrossEncoderConfig):
    """Freeze / wrap ``network`` (the Hugging Face module) for ``config.mode``; returns the module to train. The
    classification head trains in every non-PEFT mode; under PEFT, BERT's pooler (dense + tanh
    over [CLS], between the encoder and the head, never trained in sentence-transformers
    checkpoints) trains in full next to the adapter."""
    base = getattr(network, "base_model", network)
    pooler = ["pooler"] if getattr(base, "pooler", None) is not None else None
    heads = [getattr(network, n) for n in ("classifier", "score") if hasattr(network, n)]
    tuning = LMTuning(config.mode, config.top_k_layers, config.lora_r, config.lora_alpha,
                      config.lora_dropout, config.prefix_tokens)
    return apply_tuning(network, tuning, "SEQ_CLS", heads, pooler, label="cross-encoder")


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
    with quiet_transformers():
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
