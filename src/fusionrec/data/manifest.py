"""Split manifests: a split saved as raw-id rows plus a JSON sidecar, so a run can be re-scored,
audited or shared without re-running (or trusting) the protocol.

``split.parquet`` holds one row per labelled pair: ``part, user, item, label`` and, for protocols
with per-row context, ``history_items`` / ``history_labels`` (lists; null where padded). Ids are
the dataset's raw ids, so the file survives re-indexing. ``split.json`` records protocol, task,
seed, params, row counts and the sha256 of the rows in a canonical text form. Reading checks the
hash and re-derives the leak-free ``features`` (and a cold-start split's cold entities and
candidate items) with the protocol's own rule.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from fusionrec.data.errors import DataError
from fusionrec.data.schema import Dataset
from fusionrec.data.split import Pairs, Split

FORMAT = "fusionrec-split-manifest"
VERSION = 1
ROWS_FILE = "split.parquet"
PARTS = ("train", "valid", "test")


def _paths(path: str | Path) -> tuple[Path, Path]:
    """(rows file, sidecar) for a directory, a ``.parquet`` file or a ``.json`` sidecar."""
    path = Path(path)
    if path.suffix in (".parquet", ".json"):
        return path.with_suffix(".parquet"), path.with_suffix(".json")
    return path / ROWS_FILE, (path / ROWS_FILE).with_suffix(".json")


def _columns(split: Split, dataset: Dataset) -> dict[str, list]:
    """Manifest columns in raw ids, parts concatenated in train/valid/test order."""
    pairs = [split.part(p) for p in PARTS]
    with_history = any(p.history_items is not None for p in pairs)
    cols: dict[str, list] = {"part": [], "user": [], "item": [], "label": []}
    if with_history:
        cols.update(history_items=[], history_labels=[])
    items = np.asarray(dataset.items.ids + (None,), dtype=object)  # index -1 -> None
    targets = _target_vocab(split.task, dataset)
    for name, p in zip(PARTS, pairs):
        cols["part"] += [name] * len(p)
        cols["user"] += list(dataset.users.raw(p.user))
        cols["item"] += list(targets.raw(p.item))
        cols["label"] += [float(v) for v in p.label]
        if with_history:
            hist = p.history_items if p.history_items is not None else np.zeros((len(p), 0), int)
            labels = p.history_labels if p.history_labels is not None else hist.astype(float)
            cols["history_items"] += [list(items[row]) for row in hist]
            cols["history_labels"] += [[None if i < 0 else float(v) for i, v in zip(h, lab)]
                                       for h, lab in zip(hist, labels)]
    return cols


def _target_vocab(task: str, dataset: Dataset):
    """The vocabulary of the ``item`` column: users for link protocols (user→user pairs)."""
    return dataset.users if task == "links" else dataset.items


def rows_sha256(cols: dict[str, list]) -> str:
    """sha256 of the rows as tab-separated text (``None`` as empty), one row per line."""
    digest = hashlib.sha256()
    names = list(cols)
    digest.update(("\t".join(names) + "\n").encode())
    fmt = lambda v: ",".join(fmt(x) for x in v) if isinstance(v, list) else (  # noqa: E731
        "" if v is None else repr(float(v)) if isinstance(v, float) else str(v))
    for row in zip(*(cols[n] for n in names)):
        digest.update(("\t".join(fmt(v) for v in row) + "\n").encode())
    return digest.hexdigest()


def write_manifest(split: Split, path: str | Path, dataset: Dataset | None = None) -> Path:
    """Write ``split`` to ``path`` (a directory, or a ``.parquet`` file name); returns the rows
    file. Raw ids come from ``dataset`` (default: ``split.features``, same vocabularies)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dataset = dataset or split.features
    rows_path, meta_path = _paths(path)
    rows_path.parent.mkdir(parents=True, exist_ok=True)
    cols = _columns(split, dataset)
    table = pa.table({name: pa.array(values, type=_ARROW_TYPES[name](pa))
                      for name, values in cols.items()})
    pq.write_table(table, rows_path)
    meta = {"format": FORMAT, "version": VERSION, "protocol": split.protocol, "task": split.task,
            "seed": split.seed, "params": split.params, "dataset": dataset.name,
            "n_users": dataset.n_users, "n_items": dataset.n_items,
            "rows": {p: len(split.part(p)) for p in PARTS},
            "positives": {p: int(split.part(p).label.sum()) for p in PARTS},
            "rows_file": rows_path.name, "sha256": rows_sha256(cols)}
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return rows_path


_ARROW_TYPES = {
    "part": lambda pa: pa.string(), "user": lambda pa: pa.string(),
    "item": lambda pa: pa.string(), "label": lambda pa: pa.float32(),
    "history_items": lambda pa: pa.list_(pa.string()),
    "history_labels": lambda pa: pa.list_(pa.float32()),
}


def read_manifest(path: str | Path, dataset: Dataset) -> Split:
    """Rebuild the :class:`Split` saved at ``path`` against ``dataset`` (the dataset it was made
    from). Raises :class:`DataError` if the rows were changed or name unknown ids."""
    import pyarrow.parquet as pq

    from fusionrec.data.protocols import derive_cold, derive_features

    rows_path, meta_path = _paths(path)
    for needed in (meta_path, rows_path):
        if not needed.is_file():
            raise DataError(str(needed), None, None, "split manifest file not found")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise DataError(str(meta_path), None, "format",
                        f"is not a {FORMAT} version {VERSION} sidecar")
    cols = pq.read_table(rows_path).to_pydict()
    if rows_sha256(cols) != meta["sha256"]:
        raise DataError(str(rows_path), None, None,
                        f"rows do not match the sha256 in {meta_path.name}; the file was changed")
    part = np.asarray(cols["part"], dtype=object)
    user = _indices(dataset.users, cols["user"], rows_path, "user")
    item = _indices(_target_vocab(meta["task"], dataset), cols["item"], rows_path, "item")
    label = np.asarray(cols["label"], dtype=np.float32)
    hist_items = hist_labels = None
    if "history_items" in cols:
        raw = cols["history_items"]
        flat = [x for row in raw for x in row if x is not None]
        lookup = dict(zip(flat, _indices(dataset.items, flat, rows_path, "history_items",
                                         rows_known=False)))
        hist_items = np.array([[-1 if x is None else lookup[x] for x in row] for row in raw],
                              dtype=np.int64).reshape(len(raw), -1)
        hist_labels = np.array([[-1.0 if x is None else x for x in row]
                                for row in cols["history_labels"]],
                               dtype=np.float32).reshape(len(raw), -1)
    built = {}
    for name in PARTS:
        rows = part == name
        pick = lambda a, rows=rows: None if a is None else a[rows]  # noqa: E731
        built[name] = Pairs(user[rows], item[rows], label[rows], pick(hist_items),
                            pick(hist_labels))
    features = derive_features(dataset, meta["protocol"], built["train"], built["valid"],
                               built["test"])
    cold = derive_cold(meta["protocol"], built["train"], built["valid"], built["test"],
                       meta["params"])
    return Split(meta["protocol"], meta["task"], int(meta["seed"]), built["train"],
                 built["valid"], built["test"], features, params=dict(meta["params"]),
                 cold=cold)


def _indices(vocab, raws: list, file: Path, field: str, rows_known: bool = True) -> np.ndarray:
    idx = vocab.indices(raws)
    missing = np.flatnonzero(idx < 0)
    if missing.size:
        row = int(missing[0])
        raise DataError(str(file), row + 1 if rows_known else None, field,
                        f"id {raws[row]!r} is not in the dataset ({missing.size} unknown ids); "
                        "read the manifest with the dataset it was made from", unit="row")
    return idx
