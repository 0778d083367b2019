"""A benchmark suite entry run by a peer library (``peer: implicit-als``) on FusionRec's split.

The entry's run config fixes only the data, the protocol and the evaluation settings. For one
seed, :func:`run_peer_entry`

1. builds the split with the same code FusionRec's own entries use (``load_data`` +
   ``make_split``), writes its manifest into the run folder (``split.parquet`` / ``split.json``,
   whose sha256 the result carries: equal hashes, equal splits) and reads it back from there;
2. refuses a peer that cannot score the split's cold entities
   (:mod:`fusionrec.evaluation.peer_text`), exports the split as plain arrays (``peer-split/``;
   plus the leak-free item texts for a text-aware peer) and runs
   :mod:`fusionrec.evaluation.peer_side.run_peer` under the peer virtualenv's python (one thread
   per BLAS pool), which writes every grid point's valid and test outputs (``peer-out/``);
3. scores every output with FusionRec's metric code (:mod:`fusionrec.evaluation.peers`), keeps
   the grid point with the best valid :data:`~fusionrec.evaluation.peers.MONITOR` and returns its
   test metrics; ``peer.json`` keeps the whole grid and the peer's environment.

The peer python is ``$FUSIONREC_PEER_PYTHON``, else the suite's ``peer_python``, else
``.venv-peer/bin/python`` at the repository root; a missing one raises :class:`PeerUnavailable`
whose one-line message says how to create it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from fusionrec.errors import FusionRecError

PEER_PYTHON_ENV = "FUSIONREC_PEER_PYTHON"
DEFAULT_PEER_PYTHON = Path(".venv-peer") / "bin" / "python"
CREATE_HINT = ("python -m venv .venv-peer && .venv-peer/bin/pip install -r "
               "benchmarks/peer/requirements.txt")
RUNNER = Path(__file__).resolve().parent / "peer_side" / "run_peer.py"
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
PEER_FILE, PEER_LOG, SPLIT_DIR, OUTPUT_DIR = "peer.json", "peer.log", "peer-split", "peer-out"


class PeerUnavailable(FusionRecError, RuntimeError):
    """No usable python for the peer virtualenv."""


class PeerFailed(FusionRecError, RuntimeError):
    """The peer runner exited with an error."""


def repo_root() -> Path:
    """The source checkout FusionRec runs from (``pyproject.toml`` two levels above the
    package), else the working directory."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


def peer_python(configured: str | Path | None = None) -> Path:
    """The peer virtualenv's python: ``$FUSIONREC_PEER_PYTHON`` (a machine's choice beats the
    committed suite's), else ``configured`` (the suite's ``peer_python``), else the default."""
    chosen = os.environ.get(PEER_PYTHON_ENV) or configured
    path = Path(chosen).expanduser() if chosen else repo_root() / DEFAULT_PEER_PYTHON
    if not path.is_file() or not os.access(path, os.X_OK):
        raise PeerUnavailable(f"peer python {path} not found; create the peer venv with "
                              f"`{CREATE_HINT}` at the repository root, or point "
                              f"{PEER_PYTHON_ENV} (or the suite's peer_python) at one")
    return path


@dataclass(frozen=True)
class PeerResult:
    """The chosen grid point of one peer on one split."""

    model: str
    library: str
    version: str
    params: dict[str, Any]
    selected_on: str              # the valid metric the grid point was chosen on
    valid: dict[str, float]       # the chosen point's valid metrics
    test: dict[str, float]        # ... and its test metrics (the record's ``metrics``)
    split_sha256: str             # the split manifest the peer was given
    grid: list[dict[str, Any]] = field(default_factory=list)  # every point's valid monitor
    sources: tuple[str, ...] = ("interactions",)  # what the peer read (text peers: more)

    def record_fields(self) -> dict[str, Any]:
        """What a benchmark record adds for a peer row."""
        return {"library": self.library, "library_version": self.version,
                "params": self.params, "sources": list(self.sources),
                "selected_on": {"metric": f"valid {self.selected_on}",
                                "value": self.valid[self.selected_on]}}


def run_peer_process(python: Path, split_dir: Path, out_dir: Path, models: Sequence[str],
                     seed: int, k: int, log_path: Path) -> None:
    """Run the peer runner in its own virtualenv; its output goes to ``log_path``."""
    env = {**os.environ, **{v: "1" for v in THREAD_VARS}}
    command = [str(python), str(RUNNER), "--split", str(split_dir), "--out", str(out_dir),
               "--k", str(k), "--seed", str(seed), "--models", *models]
    with log_path.open("w", encoding="utf-8") as log:
        done = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                              check=False)
    if done.returncode != 0:
        lines = [line for line in log_path.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
        last = lines[-1].strip() if lines else "no output"
        raise PeerFailed(f"peer runner exited with {done.returncode}: {last} (log: {log_path})")


def _manifest_split(split, dataset, run_dir: Path):
    """``(split, sha256)``: ``split`` written as the run's manifest and read back (the read
    checks the rows against the recorded hash), so the peer gets exactly what the hash names."""
    from fusionrec.data.manifest import read_manifest, write_manifest

    write_manifest(split, run_dir, dataset)
    sha = json.loads((run_dir / "split.json").read_text(encoding="utf-8"))["sha256"]
    return read_manifest(run_dir, dataset), sha


def run_peer_entry(peer: str, config, run_dir: str | Path, *, data_dir: str | None = None,
                   python: str | Path | None = None, keep_split: bool = False) -> PeerResult:
    """Run peer model ``peer`` on the split ``config`` (a :class:`~fusionrec.config.RunConfig`)
    defines, in ``run_dir``; ``python``: the suite's configured peer python."""
    from fusionrec.evaluation.peer_side.exchange import read_outputs, write_split
    from fusionrec.evaluation.peer_text import check_peer_cold_start, export_item_texts, \
        peer_sources
    from fusionrec.evaluation.peers import MONITOR, PEER_LIBRARIES, output_metrics, select, \
        to_arrays
    from fusionrec.training import artifacts
    from fusionrec.training.run import evaluation_kwargs, load_data, make_split

    if peer not in PEER_LIBRARIES:
        raise ValueError(f"unknown peer {peer!r}; known peers: {sorted(PEER_LIBRARIES)}")
    executable = peer_python(python)  # before any data work: a missing venv fails at once
    run_dir = Path(run_dir)
    artifacts.write_config(run_dir, config)
    dataset = load_data(config.data, data_dir).dataset
    split, sha = _manifest_split(make_split(dataset, config.protocol), dataset, run_dir)
    check_peer_cold_start(peer, split)  # before training, as the trainer does for models
    arrays = to_arrays(split, dataset.name, sha)
    settings = {k: v for k, v in evaluation_kwargs(config).items()
                if k in ("ks", "threshold", "ctr_batch_size")}
    write_split(run_dir / SPLIT_DIR, arrays)
    export_item_texts(peer, split, config.encoder, run_dir / SPLIT_DIR)
    run_peer_process(executable, run_dir / SPLIT_DIR, run_dir / OUTPUT_DIR, [peer], split.seed,
                     max(settings["ks"]), run_dir / PEER_LOG)
    if not keep_split:  # the manifest beside it holds the same rows
        shutil.rmtree(run_dir / SPLIT_DIR)
    outputs, environment = read_outputs(run_dir / OUTPUT_DIR)
    monitor = MONITOR[split.task]
    scored = [output_metrics(arrays, o, **settings) for o in outputs]
    best = select(outputs, scored, monitor).get(peer)
    if best is None:
        raise PeerFailed(f"the peer runner wrote no output for {peer}")
    chosen = next(o for o in outputs if o.model == peer and o.params == best["params"])
    grid = [{"params": o.params, f"valid {monitor}": m["valid"][monitor],
             "fit_seconds": o.fit_seconds} for o, m in zip(outputs, scored) if o.model == peer]
    result = PeerResult(peer, chosen.library, chosen.version, chosen.params, monitor,
                        dict(best["valid"]), dict(best["test"]), sha, grid,
                        peer_sources(peer, split.features))
    (run_dir / PEER_FILE).write_text(json.dumps(
        {"peer": peer, "library": result.library, "version": result.version,
         "split_sha256": sha, "evaluation": settings, "selected_on": f"valid {monitor}",
         "chosen": {"params": result.params, "valid": result.valid, "test": result.test},
         "grid": grid, "environment": environment}, indent=2) + "\n", encoding="utf-8")
    return result
