"""Per-epoch checkpoints: ``checkpoints/epoch-NNNN.safetensors`` (weights, best weights,
optimiser tensors) and ``checkpoints/last.json`` (counters, history, optimiser scalars).

The JSON is written last, atomically, and names the tensor file (with its sha256) it belongs to,
so a crash at any point leaves a consistent pair: the old JSON still names the old tensor file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from fusionrec.training.optim import optimizer_from_flat, optimizer_to_flat

CHECKPOINT_DIR = "checkpoints"
_MODEL, _BEST = "model.", "best."


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(run_dir: str | Path, module: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, best: dict[str, torch.Tensor] | None,
                    state: dict[str, Any]) -> Path:
    """Write the checkpoint after epoch ``state["epochs_run"]``; older tensor files go only
    after the JSON that names the new one is in place."""
    from safetensors.torch import save_file

    folder = Path(run_dir) / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    optim_tensors, optim_json = optimizer_to_flat(optimizer)
    tensors = {_MODEL + k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    tensors.update({_BEST + k: v.contiguous() for k, v in (best or {}).items()})
    tensors.update(optim_tensors)
    weights = folder / f"epoch-{int(state['epochs_run']):04d}.safetensors"
    save_file(tensors, str(weights) + ".tmp")
    os.replace(str(weights) + ".tmp", weights)
    payload = {**state, "optimizer": optim_json, "weights_file": weights.name,
               "weights_sha256": _sha256(weights)}
    meta, tmp = folder / "last.json", folder / "last.json.tmp"
    tmp.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, meta)
    for old in folder.glob("epoch-*.safetensors"):
        if old.name != weights.name:
            old.unlink()
    return meta


def load_checkpoint(run_dir: str | Path, module: torch.nn.Module,
                    optimizer: torch.optim.Optimizer
                    ) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None] | None:
    """Restore ``module`` and ``optimizer``; return ``(state, best_weights)`` or ``None`` when the
    run has no checkpoint yet."""
    from safetensors.torch import load_file

    folder = Path(run_dir) / CHECKPOINT_DIR
    meta = folder / "last.json"
    if not meta.is_file():
        return None
    state = json.loads(meta.read_text(encoding="utf-8"))
    weights = folder / str(state.get("weights_file", ""))
    if not weights.is_file() or _sha256(weights) != state.get("weights_sha256"):
        raise ValueError(f"checkpoint {meta} names {weights.name}, which is missing or changed; "
                         "delete the checkpoints folder to start over")
    tensors = load_file(str(weights))
    module.load_state_dict({k[len(_MODEL):]: v for k, v in tensors.items()
                            if k.startswith(_MODEL)})
    optimizer_from_flat(optimizer, tensors, state.pop("optimizer"))
    best = {k[len(_BEST):]: v for k, v in tensors.items() if k.startswith(_BEST)}
    return state, (best or None)
