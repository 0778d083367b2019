"""Plain-file hand-over between FusionRec and a peer library running in its own virtualenv.

Only numpy is needed here, so ``run_peer.py`` (beside this file) can import it inside
``.venv-peer`` (which has no FusionRec and no torch); FusionRec imports it as
``fusionrec.evaluation.peer_side.exchange``. Two directions:

* FusionRec → peer: ``split.npz`` (``{part}_user``, ``{part}_item``, ``{part}_label`` in
  FusionRec's internal indices; on a cold-start split ranked among candidates also
  ``valid_candidates`` / ``test_candidates``) plus ``split.json`` (protocol, task, sizes, the
  cold kind, the sha256 of the split manifest the arrays came from, and a sha256 of the arrays
  themselves). For text-aware peers also ``item_text.json``: one text per item, in index
  order, with its sha256 (:func:`write_item_texts`).
* peer → FusionRec: one ``.npz`` per (model, hyper-parameters) with either top-K lists for the
  valid and test users (top-K tasks) or one score per valid/test row (CTR tasks), listed in
  ``outputs.json``. Metrics are computed back in FusionRec, with FusionRec's own metric code.

Exclusion rule (what FusionRec's ``evaluate`` does): ranking the valid part skips each user's
training positives; ranking the test part skips training and validation positives.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SPLIT_FORMAT = "fusionrec-peer-split"
OUTPUT_FORMAT = "fusionrec-peer-output"
VERSION = 1
PARTS = ("train", "valid", "test")
SPLIT_ARRAYS, SPLIT_META, OUTPUTS_META = "split.npz", "split.json", "outputs.json"
ITEM_TEXT = "item_text.json"
TEXT_FORMAT = "fusionrec-peer-item-text"


@dataclass(frozen=True)
class PartArrays:
    """One split part: ``(user, item, label)`` rows in internal indices."""

    user: np.ndarray
    item: np.ndarray
    label: np.ndarray

    def positives(self) -> "PartArrays":
        keep = self.label > 0.5
        return PartArrays(self.user[keep], self.item[keep], self.label[keep])


@dataclass(frozen=True)
class SplitArrays:
    """A split as plain arrays, with where it came from."""

    protocol: str
    task: str  # "topk" or "ctr"
    seed: int
    dataset: str
    n_users: int
    n_items: int
    parts: dict  # part name -> PartArrays
    source_sha256: str = ""  # sha256 recorded in the FusionRec split manifest
    cold_kind: str | None = None  # "items" / "users" on a cold-start split
    candidates: dict | None = None  # part -> items it is ranked among (rank_among: cold)

    def __post_init__(self) -> None:
        if self.task not in ("topk", "ctr"):
            raise ValueError(f"task must be 'topk' or 'ctr', got {self.task!r}")
        if sorted(self.parts) != sorted(PARTS):
            raise ValueError(f"parts must be {PARTS}, got {sorted(self.parts)}")


def _arrays(split: SplitArrays) -> dict[str, np.ndarray]:
    out = {}
    for name in PARTS:
        part = split.parts[name]
        out[f"{name}_user"] = np.asarray(part.user, dtype=np.int64)
        out[f"{name}_item"] = np.asarray(part.item, dtype=np.int64)
        out[f"{name}_label"] = np.asarray(part.label, dtype=np.float32)
    for name, items in (split.candidates or {}).items():
        out[f"{name}_candidates"] = np.asarray(items, dtype=np.int64)
    return out


def arrays_sha256(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over the arrays' names, dtypes, shapes and bytes (name order)."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{value.dtype.str}|{value.shape}\n".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def write_split(folder: str | Path, split: SplitArrays) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = _arrays(split)
    np.savez(folder / SPLIT_ARRAYS, **arrays)
    meta = {"format": SPLIT_FORMAT, "version": VERSION, "protocol": split.protocol,
            "task": split.task, "seed": split.seed, "dataset": split.dataset,
            "n_users": split.n_users, "n_items": split.n_items,
            "rows": {p: int(len(split.parts[p].user)) for p in PARTS},
            "source_sha256": split.source_sha256, "arrays_sha256": arrays_sha256(arrays),
            "cold_kind": split.cold_kind}
    (folder / SPLIT_META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return folder


def read_split(folder: str | Path) -> SplitArrays:
    """The split written by :func:`write_split`; refuses arrays that no longer match."""
    folder = Path(folder)
    meta = json.loads((folder / SPLIT_META).read_text())
    if meta.get("format") != SPLIT_FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"{folder / SPLIT_META} is not a {SPLIT_FORMAT} v{VERSION} file")
    with np.load(folder / SPLIT_ARRAYS) as data:
        arrays = {name: data[name] for name in data.files}
    if arrays_sha256(arrays) != meta["arrays_sha256"]:
        raise ValueError(f"{folder / SPLIT_ARRAYS} does not match its sha256 in {SPLIT_META}")
    parts = {p: PartArrays(arrays[f"{p}_user"], arrays[f"{p}_item"], arrays[f"{p}_label"])
             for p in PARTS}
    candidates = {p: arrays[f"{p}_candidates"] for p in ("valid", "test")
                  if f"{p}_candidates" in arrays}
    return SplitArrays(meta["protocol"], meta["task"], int(meta["seed"]), meta["dataset"],
                       int(meta["n_users"]), int(meta["n_items"]), parts,
                       meta["source_sha256"], meta.get("cold_kind"), candidates or None)


def write_item_texts(folder: str | Path, texts: list[str]) -> Path:
    """``item_text.json``: ``texts[i]`` is item ``i``'s text, with a sha256 over them."""
    path = Path(folder) / ITEM_TEXT
    digest = hashlib.sha256(json.dumps(texts, ensure_ascii=False).encode()).hexdigest()
    path.write_text(json.dumps({"format": TEXT_FORMAT, "version": VERSION, "sha256": digest,
                                "texts": texts}, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_item_texts(folder: str | Path, n_items: int) -> list[str]:
    """The texts :func:`write_item_texts` wrote; refuses a file that does not match."""
    path = Path(folder) / ITEM_TEXT
    if not path.is_file():
        raise ValueError(f"{path} not found: this peer reads item texts, which FusionRec "
                         f"exports for text-aware peers only")
    meta = json.loads(path.read_text(encoding="utf-8"))
    texts = meta.get("texts")
    digest = hashlib.sha256(json.dumps(texts, ensure_ascii=False).encode()).hexdigest()
    if meta.get("format") != TEXT_FORMAT or digest != meta.get("sha256") \
            or not isinstance(texts, list) or len(texts) != n_items:
        raise ValueError(f"{path} is not a {TEXT_FORMAT} file for {n_items} items")
    return texts


def ranked_users(split: SplitArrays, part: str) -> np.ndarray:
    """Users ranked for ``part``: those with a positive there, ascending (FusionRec's order)."""
    return np.unique(split.parts[part].positives().user)


def excluded_parts(part: str) -> tuple[str, ...]:
    """Parts whose positives a ranking of ``part`` skips."""
    return {"valid": ("train",), "test": ("train", "valid")}[part]


def exclusion_csr(split: SplitArrays, part: str) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, indices)`` over all users: the items each user's ranking of ``part`` skips."""
    chunks = [split.parts[p].positives() for p in excluded_parts(part)]
    user = np.concatenate([c.user for c in chunks])
    item = np.concatenate([c.item for c in chunks])
    keys = np.unique(user * split.n_items + item)
    user, item = keys // split.n_items, keys % split.n_items
    indptr = np.concatenate([[0], np.cumsum(np.bincount(user, minlength=split.n_users))])
    return indptr.astype(np.int64), item.astype(np.int64)


def top_k_lists(scores: np.ndarray, users: np.ndarray, exclude: tuple[np.ndarray, np.ndarray],
                k: int) -> np.ndarray:
    """``(len(users), k)`` best items per row of ``scores`` (``(len(users), n_items)``, a
    writable float array), skipping each user's excluded items, best first. Within the list
    equal scores are ordered by item index; which of several items tied for the ``k``-th place
    gets in is arbitrary (``argpartition``), which real-valued peer scores make moot."""
    indptr, indices = exclude
    for row, user in enumerate(users):
        scores[row, indices[indptr[user]:indptr[user + 1]]] = -np.inf
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    picked = np.take_along_axis(scores, top, axis=1)
    order = np.lexsort((top, -picked), axis=1)
    top = np.take_along_axis(top, order, axis=1)
    # an excluded item only reaches the list when a user has fewer than k candidates
    return np.where(np.isneginf(np.take_along_axis(scores, top, axis=1)), -1, top)


@dataclass(frozen=True)
class PeerOutput:
    """What one peer model (one hyper-parameter setting) produced.

    ``arrays`` holds ``valid_users``/``valid_items``/``test_users``/``test_items`` (top-K) or
    ``valid_scores``/``test_scores`` (CTR, one per row of the part, in row order).
    ``score_kind`` says how CTR scores become probabilities: ``"logit"`` (sigmoid) or
    ``"preference"`` (a 0..1 regression target: clipped to [0, 1]).
    """

    model: str
    library: str
    version: str
    params: dict
    score_kind: str
    fit_seconds: float
    arrays: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.score_kind not in ("logit", "preference"):
            raise ValueError(f"score_kind must be 'logit' or 'preference', got "
                             f"{self.score_kind!r}")


def _file_name(index: int, output: PeerOutput) -> str:
    return f"{index:03d}-{output.model}.npz"


def write_outputs(folder: str | Path, outputs: list[PeerOutput], environment: dict) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for index, output in enumerate(outputs):
        name = _file_name(index, output)
        np.savez(folder / name, **output.arrays)
        entries.append({"model": output.model, "library": output.library,
                        "version": output.version, "params": output.params,
                        "score_kind": output.score_kind, "fit_seconds": output.fit_seconds,
                        "file": name, "arrays_sha256": arrays_sha256(output.arrays)})
    meta = {"format": OUTPUT_FORMAT, "version": VERSION, "environment": environment,
            "outputs": entries}
    (folder / OUTPUTS_META).write_text(json.dumps(meta, indent=2) + "\n")
    return folder


def read_outputs(folder: str | Path) -> tuple[list[PeerOutput], dict]:
    """``(outputs, environment)`` written by :func:`write_outputs`."""
    folder = Path(folder)
    meta = json.loads((folder / OUTPUTS_META).read_text())
    if meta.get("format") != OUTPUT_FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"{folder / OUTPUTS_META} is not a {OUTPUT_FORMAT} v{VERSION} file")
    outputs = []
    for entry in meta["outputs"]:
        with np.load(folder / entry["file"]) as data:
            arrays = {name: data[name] for name in data.files}
        if arrays_sha256(arrays) != entry["arrays_sha256"]:
            raise ValueError(f"{folder / entry['file']} does not match its sha256")
        outputs.append(PeerOutput(entry["model"], entry["library"], entry["version"],
                                  entry["params"], entry["score_kind"],
                                  float(entry["fit_seconds"]), arrays))
    return outputs, meta["environment"]
