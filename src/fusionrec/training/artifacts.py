"""Run folders: everything needed to re-score, audit or serve a trained model.

```
RUN_DIR/
  config.yaml                 the RunConfig (validated) the run used
  model.safetensors model.json   weights + hyper-parameters (no pickle)
  users.json items.json       raw ids, in index order
  split.parquet split.json    the split manifest (fusionrec.data.manifest)
  manifest.json               versions, data checksums, sha256 of every file above, metrics
  metrics.jsonl tensorboard/ learning_curve.png checkpoints/   training telemetry
```
Opening a run re-hashes every listed file and refuses one that changed.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from fusionrec.config import RunConfig, load_config, save_config
from fusionrec.errors import FusionRecError

CONFIG_FILE = "config.yaml"
MANIFEST_FILE = "manifest.json"
USERS_FILE, ITEMS_FILE = "users.json", "items.json"
SPLIT_FILES = ("split.parquet", "split.json")
MODEL_FILES = ("model.safetensors", "model.json")
ARTEFACTS = (CONFIG_FILE, *MODEL_FILES, USERS_FILE, ITEMS_FILE, *SPLIT_FILES)
#: Model sub-folders whose files are checksummed too (a fine-tuned LM's weights).
MODEL_DIRS = ("lm",)
_PACKAGES = ("fusionrec", "torch", "numpy", "pandas", "pyarrow", "safetensors", "scikit-learn",
             "transformers", "pyyaml")


class RunError(FusionRecError, ValueError):
    """A run folder that is missing, incomplete or tampered with."""


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_fingerprint(dataset) -> str:
    """sha256 of a dataset's vocabularies and interactions: detects a changed input dataset
    even when the loader cannot name its files."""
    digest = hashlib.sha256()
    for ids in (dataset.users.ids, dataset.items.ids):
        digest.update("\x1f".join(ids).encode("utf-8") + b"\x1e")
    inter = dataset.interactions
    for column in (inter.user, inter.item, inter.rating, inter.weight, inter.timestamp):
        digest.update(b"-" if column is None else np.ascontiguousarray(column).tobytes())
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def write_config(run_dir: str | Path, config: RunConfig) -> Path:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return save_config(config, run_dir / CONFIG_FILE)


def write_run(run_dir: str | Path, config: RunConfig, model, split, dataset,
              data_checksums: Mapping[str, str] | None = None,
              metrics: Mapping[str, Any] | None = None, data_root: str | None = None,
              privacy: Mapping[str, Any] | None = None,
              fit: Mapping[str, Any] | None = None) -> Path:
    """Write every artefact of a trained run and its ``manifest.json`` (``privacy``: e.g. the
    pseudonym key id, see :mod:`fusionrec.training.pseudonym`; ``fit``: the model's
    ``fit_details()``, e.g. the candidates of fusion ``sources: auto``)."""
    from fusionrec.data.manifest import write_manifest

    run_dir = Path(run_dir)
    write_config(run_dir, config)
    model.save(run_dir)
    for name, vocab in ((USERS_FILE, dataset.users), (ITEMS_FILE, dataset.items)):
        (run_dir / name).write_text(json.dumps(list(vocab.ids)) + "\n", encoding="utf-8")
    write_manifest(split, run_dir, dataset)
    manifest = {
        "format": "fusionrec-run", "version": 1,
        "model": model.name,
        "packages": package_versions(),
        "data": {"name": dataset.name, "fingerprint": dataset_fingerprint(dataset),
                 "root": data_root, "files": dict(data_checksums or {})},
        "protocol": {"name": split.protocol, "task": split.task, "seed": split.seed},
        "files": {name: file_sha256(run_dir / name) for name in _artefact_names(run_dir)},
        "metrics": dict(metrics or {}),
    }
    if privacy:
        manifest["privacy"] = dict(privacy)
    if fit:
        manifest["fit"] = dict(fit)
    (run_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return run_dir / MANIFEST_FILE


def _artefact_names(run_dir: Path) -> list[str]:
    extra = [p.relative_to(run_dir).as_posix() for folder in MODEL_DIRS
             for p in sorted((run_dir / folder).rglob("*")) if p.is_file()]
    return [*ARTEFACTS, *extra]


def verify_run(run_dir: str | Path) -> dict[str, Any]:
    """The run's manifest, after checking every artefact against its recorded sha256."""
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST_FILE
    if not path.is_file():
        raise RunError(f"{run_dir} is not a finished run folder (no {MANIFEST_FILE}); "
                       "train with `fusionrec train` first, or `--resume` an interrupted run")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise RunError(f"{path} is not valid JSON ({error})") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise RunError(f"{path} has no file checksums; refusing to load the run")
    # A manifest edited to drop an entry would otherwise wave the unlisted file through.
    unlisted = [name for name in ARTEFACTS if name not in files]
    if unlisted:
        raise RunError(f"{path} lists no sha256 for {unlisted}; the manifest was edited or is "
                       "incomplete; refusing to load the run")
    for name, expected in files.items():
        file = run_dir / name
        if not file.is_file():
            raise RunError(f"{file} is missing from the run folder")
        if file_sha256(file) != expected:
            raise RunError(f"{file} was modified after training (sha256 differs from "
                           f"{MANIFEST_FILE}); refusing to load it")
    return manifest


def load_vocabularies(run_dir: str | Path):
    from fusionrec.data.schema import Vocabulary

    run_dir = Path(run_dir)
    return tuple(Vocabulary(tuple(json.loads((run_dir / name).read_text(encoding="utf-8"))))
                 for name in (USERS_FILE, ITEMS_FILE))


def load_model(run_dir: str | Path):
    """The trained model of a (verified) run folder, via the model registry."""
    from fusionrec.models.common.persist import read_model_name
    from fusionrec.models.registry import model_class

    return model_class(read_model_name(run_dir)).load(run_dir)


def open_run(run_dir: str | Path) -> tuple[RunConfig, dict[str, Any], Any]:
    """``(config, manifest, model)`` of a run folder; refuses tampered files."""
    manifest = verify_run(run_dir)
    return read_run_config(run_dir), manifest, load_model(run_dir)


def read_run_config(run_dir: str | Path) -> RunConfig:
    """A run's ``config.yaml``, with a data spec stored relative to the run folder (a run that
    carries its own data, as ``fusionrec retrain`` writes) anchored at the folder's current
    place: such runs can be moved or copied and still load."""
    import dataclasses

    config = load_config(Path(run_dir) / CONFIG_FILE)
    spec = config.data.spec
    if spec and not Path(spec).is_absolute() and (Path(run_dir) / spec).is_file():
        anchored = str((Path(run_dir) / spec).resolve())
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, spec=anchored))
    return config
