"""Save / load a fitted cross-encoder: safetensors + JSON, no pickle.

Layout of the model folder::

    model.json          config, feature names, precision, LM id + weights hash, training summary
    model.safetensors   side head, side tables, fallback histories, seen items
    prompts.json        per-item / per-user prompt pieces (a loaded model needs no dataset)
    lm/                 LoRA / prefix: the PEFT adapter alone (adapter_model.safetensors +
                        adapter_config.json); other modes: lm/trained.safetensors with the
                        LM tensors that were trained (all of them for ``full``)

The base LM is not copied: it is re-resolved offline from ``config.model`` and its weights hash
must match the one recorded at training time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fusionrec.encoders.trainable import attach_tuned, check_base_weights, save_tuned
from fusionrec.encoders.tuning import PEFT_MODES
from fusionrec.models.common.persist import load_model_files, save_model_files

PROMPTS_FILE = "prompts.json"
LM_DIR = "lm"


def save_cross_encoder(model, directory: Path) -> Path:
    cfg = model.config
    net = model.net_
    tensors = {"fallback_items": model.fallback_items_, "fallback_labels": model.fallback_labels_,
               "seen_indptr": model.seen_.indptr, "seen_indices": model.seen_.indices}
    for name in ("side_mean", "side_std", "prior"):
        tensors[f"net.{name}"] = getattr(net, name).cpu().numpy()
    if net.side is not None:
        tensors["net.side.weight"] = net.side.weight.detach().cpu().numpy()
        tensors["net.side.bias"] = net.side.bias.detach().cpu().numpy()
        tensors.update(model.tables_.as_arrays())
    state = {"feature_names": list(model.feature_names_), "precision": model.precision_,
             "lm_active": bool(net.lm_active),
             "lm": model.lm_info_, "side_meta": _jsonable(model.side_meta_),
             "summary": _jsonable(model.summary_)}
    save_model_files(directory, model.name, cfg.to_dict(), tensors, state)
    (directory / PROMPTS_FILE).write_text(json.dumps(model.pieces_.to_json()), encoding="utf-8")
    if net.lm is not None:
        save_tuned(net.lm, cfg.mode, directory / LM_DIR)
    return directory


def load_cross_encoder(cls, directory: Path):
    import torch

    from fusionrec.models.cross_encoder.config import CrossEncoderConfig
    from fusionrec.models.cross_encoder.net import CrossEncoderNet
    from fusionrec.models.cross_encoder.prompts import PromptPieces
    from fusionrec.models.cross_encoder.side_features import SideTables
    from fusionrec.models.common.ranking import SeenItems

    meta, tensors = load_model_files(directory, cls.name)
    state = meta["state"]
    model = cls(CrossEncoderConfig.from_dict(meta["params"]))
    cfg = model.config
    model.fallback_items_ = tensors["fallback_items"].astype(np.int64)
    model.fallback_labels_ = tensors["fallback_labels"].astype(np.float32)
    model.seen_ = SeenItems(tensors["seen_indptr"].astype(np.int64),
                            tensors["seen_indices"].astype(np.int64))
    model.feature_names_ = tuple(state["feature_names"])
    model.precision_ = state["precision"]
    model.side_meta_ = state["side_meta"]
    model.summary_ = state["summary"]
    model.pieces_ = PromptPieces.from_json(
        json.loads((directory / PROMPTS_FILE).read_text(encoding="utf-8")))
    lm_module, model.tokenizer_, model.lm_info_ = None, None, None
    if cfg.uses_lm:
        lm = model._load_lm(zero_head=False, apply=cfg.mode not in PEFT_MODES)
        check_base_weights(directory, cfg.model, lm.weights_hash, state["lm"]["weights_hash"])
        lm_module = attach_tuned(lm.model, cfg.mode, directory / LM_DIR)
    if model.feature_names_:
        model.tables_ = SideTables.from_arrays(tensors)
    model.net_ = CrossEncoderNet(lm_module, len(model.feature_names_))
    with torch.no_grad():
        for name in ("side_mean", "side_std", "prior"):
            getattr(model.net_, name).copy_(torch.as_tensor(tensors[f"net.{name}"]))
        if model.net_.side is not None:
            model.net_.side.weight.copy_(torch.as_tensor(tensors["net.side.weight"]))
            model.net_.side.bias.copy_(torch.as_tensor(tensors["net.side.bias"]))
    model.net_.lm_active = lm_module is not None and state.get("lm_active", True)
    model.net_.eval()
    return model


def _jsonable(value):
    """JSON-safe copy (numpy scalars -> Python, NaN/inf -> None)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
