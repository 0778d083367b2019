"""Model files: tensors in ``model.safetensors``, hyper-parameters and scalars in ``model.json``.

No pickle anywhere: a saved model is plain tensors plus JSON, loadable without running code
from the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"
FORMAT_VERSION = 1


def save_model_files(directory: str | Path, name: str, params: Mapping[str, Any],
                     tensors: Mapping[str, np.ndarray], state: Mapping[str, Any] | None = None
                     ) -> Path:
    """Write ``model.safetensors`` (numpy arrays) and ``model.json`` under ``directory``."""
    from safetensors.numpy import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({key: np.ascontiguousarray(value) for key, value in tensors.items()},
              str(directory / WEIGHTS_FILE))
    meta = {"name": name, "format_version": FORMAT_VERSION, "params": dict(params),
            "state": dict(state or {})}
    (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n",
                                       encoding="utf-8")
    return directory


def load_model_files(directory: str | Path, expected_name: str | None = None
                     ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, tensors)`` as written by :func:`save_model_files`."""
    from safetensors.numpy import load_file

    directory = Path(directory)
    meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    if expected_name is not None and meta.get("name") != expected_name:
        raise ValueError(f"{directory / META_FILE} holds model {meta.get('name')!r}, "
                         f"not {expected_name!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{directory / META_FILE}: unsupported format_version "
                         f"{meta.get('format_version')!r}")
    return meta, load_file(str(directory / WEIGHTS_FILE))


def read_model_name(directory: str | Path) -> str:
    return json.loads((Path(directory) / META_FILE).read_text(encoding="utf-8"))["name"]


def module_tensors(module, seen) -> dict[str, np.ndarray]:
    """A torch module's state under ``module.*`` plus the seen-items CSR, ready to save."""
    tensors = {f"module.{k}": v.detach().cpu().numpy()  # device-free files
               for k, v in module.state_dict().items()}
    tensors.update(seen_indptr=seen.indptr, seen_indices=seen.indices)
    return tensors


def module_weights(tensors: Mapping[str, np.ndarray]) -> dict:
    """The ``module.*`` entries of loaded tensors as a torch state dict."""
    import torch

    return {k[len("module."):]: torch.from_numpy(v.copy()) for k, v in tensors.items()
            if k.startswith("module.")}
