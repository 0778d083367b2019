"""Shared by the privacy tests: a small synthetic dataset written to CSV with distinctive raw
user ids (so a byte search for one cannot hit by accident), a key file, and runs trained on
it with ``data.pseudonymize: true`` (trained once per session, copied before any change)."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from fusionrec.encoders.config import CACHE_ENV

KEY = b"0123456789abcdef-test-pseudonym-key"


def raw_id(user: int) -> str:
    return f"person{user:03d}.qx"


def fixture_paths(base: Path) -> dict[str, Path]:
    return {"data": base / "privacy-data", "key": base / "privacy.key",
            "cache": base / "privacy-cache"}


def write_data(base: Path) -> Path:
    """The dataset as CSV + spec.yaml (written on first use); returns the spec path."""
    from fusionrec.data.export import write_dataset
    from fusionrec.data.schema import Vocabulary
    from fusionrec.data.synthetic import generate

    paths = fixture_paths(base)
    spec = paths["data"] / "spec.yaml"
    if not spec.is_file():
        dataset = generate(n_users=60, n_items=40, n_interactions=700)
        dataset = dataset.replace(users=Vocabulary(tuple(raw_id(u)
                                                         for u in range(dataset.n_users))))
        write_dataset(dataset, paths["data"])
        paths["key"].write_bytes(KEY)
    return spec


def run_config(base: Path, model: str = "fusion", pseudonymize: bool = True, **data):
    from fusionrec.config import RunConfig

    paths = fixture_paths(base)
    # the embedding cache comes from $FUSIONREC_CACHE, so copies of a run can use copies of it
    params = {"embedding_dim": 8, "hidden": [16], "layers": 1,
              "encoder": {"model": "hashing:16"}}
    if model != "fusion":
        params = {"embedding_dim": 8}
    return RunConfig.from_dict({
        "data": {"spec": str(write_data(base)), "pseudonymize": pseudonymize,
                 **({"pseudonym_key_file": str(paths["key"])} if pseudonymize else {}), **data},
        "protocol": {"name": "topk-random", "seed": 0},
        "model": {"name": model, "params": params},
        "trainer": {"epochs": 2, "batch_size": 512, "lr": 0.01, "num_threads": 1},
        "evaluation": {"ks": [5]}})


def trained(base: Path, model: str = "fusion") -> Path:
    from fusionrec.evaluation.runs import train_run

    run_dir = base / f"privacy-run-{model}"
    if not (run_dir / "manifest.json").is_file():
        with cache_at(fixture_paths(base)["cache"]):
            train_run(run_config(base, model), run_dir, progress=False)
    return run_dir


@contextmanager
def cache_at(folder: Path):
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(folder)
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = before


def copy_run(base: Path, target: Path, model: str = "fusion") -> Path:
    """A copy of the trained run at ``target`` and of the embedding cache at
    :func:`cache_of` ``(target)`` (point ``$FUSIONREC_CACHE`` there before changing it)."""
    shutil.copytree(trained(base, model), target)
    cache = fixture_paths(base)["cache"]
    if cache.is_dir():  # runs without LM text leave no cache
        shutil.copytree(cache, cache_of(target))
    return target


def cache_of(run_copy: Path) -> Path:
    return run_copy.with_name(run_copy.name + "-cache")


def pseudonym(user: int) -> str:
    from fusionrec.training.pseudonym import Pseudonymiser

    return Pseudonymiser(KEY).pseudonym(raw_id(user))


def files_under(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in sorted(root.rglob("*")) if p.is_file()]


def byte_hits(files, needles: dict[str, bytes]) -> list[tuple[str, str]]:
    """``(file, needle name)`` for every needle found in every file's raw bytes."""
    hits = []
    for path in files:
        data = path.read_bytes()
        hits += [(str(path), name) for name, needle in needles.items() if needle in data]
    return hits
