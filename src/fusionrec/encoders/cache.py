"""On-disk embedding cache: memory-mapped ``.npy`` shards plus JSON metadata.

One folder per key (model id + weights hash, pooling, max length, normalisation, textualiser
version); inside, rows are found by the sha256 of their text. Each run appends one shard with the
texts it had to encode. Every shard's shape, dtype, key list and sha256 are checked on open:
anything that does not match (a truncated write, an edited file, another model's vectors) makes
the whole folder be discarded and rebuilt, never silently used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

FORMAT = 1
META = "meta.json"
#: Past this many shards, the next write merges them into one (fewer files to open and hash).
MAX_SHARDS = 8


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def cache_key(identity: dict[str, Any], text_version: str) -> dict[str, Any]:
    return {**identity, "text_version": text_version, "format": FORMAT}


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)  # atomic: readers see the old or the new file, never half of one


class CacheCorrupt(Exception):
    pass


class EmbeddingCache:
    """Vectors for texts under one key. ``rebuilt`` says why an unusable folder was discarded."""

    def __init__(self, root: str | os.PathLike, identity: dict[str, Any], text_version: str,
                 dim: int) -> None:
        self.key = cache_key(identity, text_version)
        self.dim = int(dim)
        digest = hashlib.sha256(json.dumps(self.key, sort_keys=True).encode()).hexdigest()[:16]
        slug = "".join(c if c.isalnum() or c in "-." else "-" for c in str(identity["model"]))
        self.dir = Path(root).expanduser() / f"{slug[-40:]}-{text_version}-{digest}"
        self.rebuilt: str | None = None
        self._shards: list[dict[str, Any]] = []
        self._arrays: list[np.ndarray] = []
        self._where: dict[str, tuple[int, int]] = {}
        try:
            self._open()
        except CacheCorrupt as problem:
            self.rebuilt = str(problem)
            warnings.warn(f"embedding cache {self.dir} is unusable ({problem}); rebuilding",
                          RuntimeWarning, stacklevel=2)
            shutil.rmtree(self.dir, ignore_errors=True)
            self._shards, self._arrays, self._where = [], [], {}

    def __len__(self) -> int:
        return len(self._where)

    # -- reading ---------------------------------------------------------------------------
    def _open(self) -> None:
        meta_path = self.dir / META
        if not meta_path.exists():
            return
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise CacheCorrupt(f"{META} unreadable: {error}") from None
        if meta.get("key") != self.key or meta.get("dim") != self.dim:
            raise CacheCorrupt("metadata does not match this model/text key")
        for shard in meta.get("shards", []):
            self._load_shard(shard)
        self._shards = list(meta["shards"])

    def _load_shard(self, shard: dict[str, Any]) -> None:
        path, keys_path = self.dir / shard["file"], self.dir / shard["keys"]
        if not path.exists() or not keys_path.exists():
            raise CacheCorrupt(f"{shard['file']} is missing")
        if _file_sha256(path) != shard["sha256"]:
            raise CacheCorrupt(f"{shard['file']} checksum mismatch")
        try:
            keys = json.loads(keys_path.read_text(encoding="utf-8"))
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise CacheCorrupt(f"{shard['file']} unreadable: {error}") from None
        if array.dtype != np.float32 or array.shape != (shard["rows"], self.dim) \
                or len(keys) != shard["rows"]:
            raise CacheCorrupt(f"{shard['file']} has shape {array.shape}, expected "
                               f"({shard['rows']}, {self.dim}) float32")
        index = len(self._arrays)
        self._arrays.append(array)
        for row, key in enumerate(keys):
            self._where[key] = (index, row)

    def lookup(self, hashes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors (n, dim), found (n,) bool)``; rows not found are zeros."""
        out = np.zeros((len(hashes), self.dim), dtype=np.float32)
        found = np.zeros(len(hashes), dtype=bool)
        for i, key in enumerate(hashes):
            where = self._where.get(key)
            if where is not None:
                out[i] = self._arrays[where[0]][where[1]]
                found[i] = True
        return out, found

    # -- writing ---------------------------------------------------------------------------
    def add(self, hashes: Sequence[str], vectors: np.ndarray, runtime: dict[str, Any]) -> None:
        """Append new rows (one shard), merging shards when there are too many."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(hashes), self.dim):
            raise ValueError(f"expected ({len(hashes)}, {self.dim}) vectors, got {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise ValueError("refusing to cache non-finite embeddings")
        keys = list(dict.fromkeys(hashes))
        if len(keys) != len(hashes):  # duplicate texts: keep the first row of each
            first = {key: i for i, key in reversed(list(enumerate(hashes)))}
            vectors = vectors[[first[key] for key in keys]]
        if not keys:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        shard = self._write_shard(keys, vectors, runtime)
        shards = self._shards + [shard]
        if len(shards) > MAX_SHARDS:
            shards = [self._merge(shards, runtime)]
        _write_json(self.dir / META, {"key": self.key, "dim": self.dim, "shards": shards})
        self._cleanup(shards)
        self._shards, self._arrays, self._where = [], [], {}
        for entry in shards:
            self._load_shard(entry)
        self._shards = shards

    def remove(self, hashes: Sequence[str]) -> int:
        """Delete the rows of ``hashes`` (e.g. a forgotten user's texts): the remaining rows
        are rewritten into one fresh shard and every old shard file is deleted, so no file of
        the folder still holds a removed vector. Returns the number of rows removed."""
        doomed = {key for key in hashes if key in self._where}
        if not doomed:
            return 0
        keys = [key for key in self._where if key not in doomed]
        vectors, _ = self.lookup(keys)
        runtimes = [shard.get("runtime") for shard in self._shards]
        self._arrays, self._where = [], {}  # drop the memory maps before deleting their files
        shards = ([{**self._write_shard(keys, vectors, {}), "merged_runtimes": runtimes}]
                  if keys else [])
        _write_json(self.dir / META, {"key": self.key, "dim": self.dim, "shards": shards})
        self._cleanup(shards)
        self._shards = []
        for entry in shards:
            self._load_shard(entry)
        self._shards = shards
        return len(doomed)

    def _write_shard(self, keys: list[str], vectors: np.ndarray,
                     runtime: dict[str, Any]) -> dict[str, Any]:
        name = f"shard-{uuid.uuid4().hex[:12]}"
        path, keys_path = self.dir / f"{name}.npy", self.dir / f"{name}.keys.json"
        tmp = self.dir / f".{name}.npy.tmp"
        with tmp.open("wb") as handle:
            np.save(handle, vectors, allow_pickle=False)
        os.replace(tmp, path)
        _write_json(keys_path, keys)
        return {"file": path.name, "keys": keys_path.name, "rows": len(keys),
                "sha256": _file_sha256(path), "runtime": runtime}

    def _merge(self, shards: list[dict[str, Any]], runtime: dict[str, Any]) -> dict[str, Any]:
        keys: list[str] = []
        parts = []
        for shard in shards:
            keys.extend(json.loads((self.dir / shard["keys"]).read_text(encoding="utf-8")))
            parts.append(np.load(self.dir / shard["file"], allow_pickle=False))
        runs = [s.get("runtime") for s in shards]
        return {**self._write_shard(keys, np.concatenate(parts), runtime), "merged_runtimes": runs}

    def _cleanup(self, shards: list[dict[str, Any]]) -> None:
        """Delete shard files no longer listed (merged, or orphaned by a crashed write)."""
        keep = {META} | {s["file"] for s in shards} | {s["keys"] for s in shards}
        for path in self.dir.iterdir():
            if path.name not in keep and path.name.startswith(("shard-", ".shard-")):
                path.unlink(missing_ok=True)
