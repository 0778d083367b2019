"""On-disk embedding cache: memory-mapped ``.npy`` shards plus JSON metadata.

One folder per key (model id + weights hash, pooling, max length, normalisation, textualiser
version); inside, rows are found by the sha256 of their text. Each run appends one shard with the
texts it had to encode. Every shard's shape, dtype, key list and sha256 are checked on open:
anything that does not match (a truncated write, an edited file, another model's vectors) makes
the folder's shards be discarded and rebuilt, never silently used.

Several processes may share a folder (parallel benchmark seeds). A shard is written under a
temporary name and renamed into place before the index (``meta.json``, itself replaced
atomically) names it, and published shard files are never modified, so reading needs no lock.
Every change to the index (add, compaction, removal, rebuild) holds an exclusive ``flock`` on
``.lock`` and re-reads the index first: writers merge their shards with everyone else's instead
of clobbering them, and only the lock holder deletes files. A reader that finds a shard gone (a
concurrent compaction) re-reads the index under the lock before calling the folder corrupt.
(:func:`fusionrec.encoders.features.encode_cached` also takes a second lock while it encodes
a folder's misses, so texts that two processes miss at once are encoded once.)
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fusionrec.errors import FusionRecError
from fusionrec.locks import exclusive

FORMAT = 1
META = "meta.json"
LOCK = ".lock"
#: Past this many shards, the next write merges them into one (fewer files to open and hash).
MAX_SHARDS = 8
#: A temporary file this old was left by a crashed writer (a live one renames its files within
#: moments of writing them), so a cleanup may delete it.
STALE_TMP_SECONDS = 3600.0


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


def _tmp(path: Path) -> Path:
    """Where a shard file is written before it is renamed to ``path`` (same folder: atomic)."""
    return path.with_name(f".{path.name}.tmp")


class CacheCorrupt(FusionRecError):
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
        self._reset()
        self.refresh()

    def refresh(self) -> None:
        """(Re-)read the index, seeing the rows other processes have added meanwhile."""
        try:
            self._open()
        except CacheCorrupt:
            # Perhaps another process compacted away a shard the index we read still named:
            # under the lock no shard can vanish, so a second failure is real corruption.
            with self._lock():
                self._open_or_rebuild()

    def __len__(self) -> int:
        return len(self._where)

    def _reset(self) -> None:
        self._shards: list[dict[str, Any]] = []
        self._arrays: list[np.ndarray] = []
        self._where: dict[str, tuple[int, int]] = {}

    def _lock(self):
        return exclusive(self.dir / LOCK)  # creates the folder if needed

    # -- reading ---------------------------------------------------------------------------
    def _open(self) -> None:
        self._reset()
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

    def _open_or_rebuild(self) -> None:
        """Load the index as it is on disk, discarding every shard if it is unusable. Only
        with the lock held: the discard deletes files."""
        try:
            self._open()
        except CacheCorrupt as problem:
            self.rebuilt = str(problem)
            warnings.warn(f"embedding cache {self.dir} is unusable ({problem}); rebuilding",
                          RuntimeWarning, stacklevel=3)
            self._reset()
            (self.dir / META).unlink(missing_ok=True)
            self._cleanup([])

    def _load_shard(self, shard: dict[str, Any]) -> None:
        path, keys_path = self.dir / shard["file"], self.dir / shard["keys"]
        if not path.exists() or not keys_path.exists():
            raise CacheCorrupt(f"{shard['file']} is missing")
        try:
            checksum = _file_sha256(path)
            keys = json.loads(keys_path.read_text(encoding="utf-8"))
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise CacheCorrupt(f"{shard['file']} unreadable: {error}") from None
        if checksum != shard["sha256"]:
            raise CacheCorrupt(f"{shard['file']} checksum mismatch")
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
        """Append new rows (one shard), merging shards when there are too many. Afterwards this
        handle also sees every row other processes added meanwhile."""
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
        shard = self._stage(keys, vectors, runtime)  # the slow write happens outside the lock
        with self._lock():
            self._open_or_rebuild()  # the index as other processes left it: merge, not clobber
            if not self._publish(shard):
                return
            shards = self._shards + [shard]
            if len(shards) > MAX_SHARDS:
                shards = [self._merge(shards, runtime)]
            self._commit(shards)

    def remove(self, hashes: Sequence[str]) -> int:
        """Delete the rows of ``hashes`` (e.g. a forgotten user's texts): the remaining rows
        are rewritten into one fresh shard and every old shard file (and any temporary file)
        is deleted, so no file of the folder still holds a removed vector. Returns the number
        of rows removed."""
        if not self.dir.exists():
            return 0
        with self._lock():
            self._open_or_rebuild()
            doomed = {key for key in hashes if key in self._where}
            if not doomed:
                return 0
            keys = [key for key in self._where if key not in doomed]
            vectors, _ = self.lookup(keys)
            runtimes = [shard.get("runtime") for shard in self._shards]
            self._reset()  # drop the memory maps before deleting their files
            shards = []
            if keys:
                shard = {**self._stage(keys, vectors, {}), "merged_runtimes": runtimes}
                self._publish(shard)
                shards = [shard]
            self._commit(shards, every_tmp=True)
        return len(doomed)

    def _stage(self, keys: list[str], vectors: np.ndarray,
               runtime: dict[str, Any]) -> dict[str, Any]:
        """Write a shard under temporary names; :meth:`_publish` renames it into place."""
        name = f"shard-{uuid.uuid4().hex[:12]}"
        path, keys_path = self.dir / f"{name}.npy", self.dir / f"{name}.keys.json"
        with _tmp(path).open("wb") as handle:
            np.save(handle, vectors, allow_pickle=False)
        _tmp(keys_path).write_text(json.dumps(keys), encoding="utf-8")
        return {"file": path.name, "keys": keys_path.name, "rows": len(keys),
                "sha256": _file_sha256(_tmp(path)), "runtime": runtime}

    def _publish(self, shard: dict[str, Any]) -> bool:
        """Rename a staged shard into place (lock held, so no cleanup sees it unlisted). False
        when a concurrent :meth:`remove` deleted the staged files: the rows stay uncached."""
        paths = [self.dir / shard["file"], self.dir / shard["keys"]]
        try:
            for path in paths:
                os.replace(_tmp(path), path)
        except FileNotFoundError:
            for path in paths:
                path.unlink(missing_ok=True)
                _tmp(path).unlink(missing_ok=True)
            warnings.warn(f"embedding cache {self.dir}: staged shard {shard['file']} was "
                          "deleted by a concurrent removal; its rows stay uncached",
                          RuntimeWarning, stacklevel=3)
            return False
        return True

    def _merge(self, shards: list[dict[str, Any]], runtime: dict[str, Any]) -> dict[str, Any]:
        keys: list[str] = []
        parts = []
        for shard in shards:
            keys.extend(json.loads((self.dir / shard["keys"]).read_text(encoding="utf-8")))
            parts.append(np.load(self.dir / shard["file"], allow_pickle=False))
        # Two processes may have encoded the same text: keep its first row only.
        first: dict[str, int] = {}
        for row, key in enumerate(keys):
            first.setdefault(key, row)
        rows = list(first.values())
        merged = self._stage([keys[row] for row in rows], np.concatenate(parts)[rows], runtime)
        self._publish(merged)
        return {**merged, "merged_runtimes": [s.get("runtime") for s in shards]}

    def _commit(self, shards: list[dict[str, Any]], every_tmp: bool = False) -> None:
        """Make ``shards`` the index, delete what it no longer names, and reload (lock held)."""
        _write_json(self.dir / META, {"key": self.key, "dim": self.dim, "shards": shards})
        self._cleanup(shards, every_tmp)
        self._reset()
        for entry in shards:
            self._load_shard(entry)
        self._shards = shards

    def _cleanup(self, shards: list[dict[str, Any]], every_tmp: bool = False) -> None:
        """Delete shard files the index does not list (merged, removed, or orphaned) and stale
        temporary files; only with the lock held. Another writer's fresh temporary files are
        kept unless ``every_tmp`` (a removal must leave no copy of a removed row)."""
        keep = {META, LOCK} | {s["file"] for s in shards} | {s["keys"] for s in shards}
        now = time.time()
        for path in self.dir.iterdir():
            if path.name in keep:
                continue
            if path.name.startswith("shard-"):
                path.unlink(missing_ok=True)
            elif path.name.startswith(".") and path.name.endswith(".tmp"):
                try:
                    stale = now - path.stat().st_mtime > STALE_TMP_SECONDS
                except FileNotFoundError:
                    continue
                if every_tmp or stale:
                    path.unlink(missing_ok=True)
