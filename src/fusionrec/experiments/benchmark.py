"""Run a benchmark suite: every entry × seed trained and evaluated through ``train_run``, or,
for a ``peer:`` entry, run by a peer library on the same split and scored by FusionRec's metric
code (:mod:`fusionrec.experiments.peer_entry`).

Writes, under ``out_dir``::

    results.json             one record per run (rewritten after each run)
    report.md                mean ± std per dataset, protocol, model and source set; the
                             source ablation when the suite has one; links to plots/
    plots/*.png              metric bars, learning curves, ablation deltas
    ablation.json            the suite's source ablation (only with an ``ablation`` section)
    compare.json             the suite's paired comparisons and row costs (only with a
                             ``compare`` section)
    runs/<entry>/seed-<s>/   each run's folder (config, weights, split manifest, telemetry)
                             plus record.json, its record, and (suites with an ablation or
                             a compare section) test_units.safetensors, its per-user /
                             per-row test values
    runs/<entry>/.seed-<s>.lock   held while a process works on that run

A record holds exactly ``dataset, protocol, model, sources, shots, seed, metrics,
wall_seconds, split_sha256`` (``metrics``: the test part; ``split_sha256``: the sha256 of the
run's split manifest, equal for every entry that ran on the same split, ``None`` if the run
failed before writing one). A peer row adds ``library``, ``library_version``, ``params`` (the
chosen grid point) and ``selected_on``. A run that fails keeps going with the next one and its
record adds ``error`` (``metrics`` empty); a model that chose something on the valid split
while fitting adds ``fit`` (its ``fit_details()``, e.g. fusion ``sources: auto``'s candidates). ``resume`` keeps finished runs' records.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from fusionrec.config import ConfigError
from fusionrec.experiments.suite import Suite, SuiteEntry
from fusionrec.locks import exclusive, try_exclusive

RESULTS_FILE, REPORT_FILE, RUNS_DIR, RECORD_FILE = ("results.json", "report.md", "runs",
                                                    "record.json")
ABLATION_FILE = "ablation.json"
log = logging.getLogger(__name__)
RECORD_FIELDS = ("dataset", "protocol", "model", "sources", "shots", "seed", "metrics",
                 "wall_seconds", "split_sha256")


@dataclass(frozen=True)
class BenchmarkOutcome:
    records: list[dict[str, Any]]
    results_path: Path
    report_path: Path

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.records if "error" in r]


def _raw_sections(entry: SuiteEntry, overrides: Sequence[str]) -> dict[str, Any]:
    """The entry's config as a dict with overrides applied, unvalidated (so a failing entry
    can still be labelled with its dataset and protocol)."""
    import yaml

    from fusionrec.config import apply_overrides

    try:
        raw = yaml.safe_load(entry.config.read_text(encoding="utf-8")) or {}
        return apply_overrides(raw if isinstance(raw, dict) else {}, overrides)
    except (OSError, yaml.YAMLError, ConfigError):
        return {}


def _label(raw: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """Dataset, protocol and model a config names (``None`` when it could not be read)."""
    if not raw:
        return None, None, None

    def get(section: str, key: str):
        value = raw.get(section)
        return value.get(key) if isinstance(value, dict) else None

    spec = get("data", "spec")
    dataset = get("data", "preset") or (Path(spec).stem if spec else None) or "synthetic"
    return dataset, get("protocol", "name") or "topk-random", get("model", "name") or "bpr-mf"


def entry_table(entry: SuiteEntry) -> tuple[str | None, str | None]:
    """The ``(dataset, protocol)`` table an entry's rows land in, as its records name them."""
    dataset, protocol, _ = _label(_raw_sections(entry, entry.run_overrides(entry.seeds[0])))
    return dataset, protocol


class _SourceLookup:
    """Sources a run used: the fitted model's ``used_sources()`` when it declares them, else
    the sources of the dataset it was given (loaded once per data config)."""

    def __init__(self, data_dir: str | None) -> None:
        self.data_dir = data_dir
        self._by_data: dict[str, list[str]] = {}

    def __call__(self, config, run_dir: Path) -> list[str]:
        from fusionrec.data.schema import SOURCE_NAMES
        from fusionrec.training import artifacts
        from fusionrec.training.run import load_data

        model = artifacts.load_model(run_dir)
        declared = model.used_sources()
        if declared:
            return [s for s in SOURCE_NAMES if s in set(declared)] + \
                [s for s in declared if s not in SOURCE_NAMES]
        key = json.dumps(config.to_dict()["data"], sort_keys=True)
        if key not in self._by_data:
            self._by_data[key] = list(load_data(config.data, self.data_dir).dataset.sources)
        return self._by_data[key]


def _split_sha256(run_dir: Path) -> str | None:
    path = run_dir / "split.json"  # the split manifest's sidecar (fusionrec.data.manifest)
    return json.loads(path.read_text(encoding="utf-8"))["sha256"] if path.is_file() else None


def _run_one(entry: SuiteEntry, seed: int, overrides: list[str], run_dir: Path,
             data_dir: str | None, progress: bool, sources: _SourceLookup,
             peer_python: Path | None = None) -> dict[str, Any]:
    from fusionrec.config import load_config

    raw = _raw_sections(entry, overrides)
    dataset, protocol, model_name = _label(raw)
    params = (raw.get("protocol") or {}).get("params") if isinstance(raw.get("protocol"),
                                                                      dict) else None
    # the config as run (entry shots and command-line overrides applied) says the shots
    shots = (params or {}).get("shots", entry.shots)
    record = {"dataset": dataset, "protocol": protocol,
              "model": entry.label or model_name,
              "sources": ["interactions"] if entry.peer else list(entry.sources or ()),
              "shots": shots, "seed": seed, "metrics": {}, "wall_seconds": 0.0,
              "split_sha256": None}
    if entry.peer:
        from fusionrec.experiments.peers import PEER_LIBRARIES

        record["library"] = PEER_LIBRARIES[entry.peer]
    started = time.perf_counter()
    try:
        config = load_config(entry.config, overrides)
        if entry.peer:
            from fusionrec.experiments.peer_entry import run_peer_entry

            peer = run_peer_entry(entry.peer, config, run_dir, data_dir=data_dir,
                                  python=peer_python)
            record["metrics"] = dict(peer.test)
            record.update(peer.record_fields())
        else:
            from fusionrec.evaluation.runs import train_run

            result = train_run(config, run_dir, data_dir=data_dir, progress=progress)
            record["metrics"] = dict(result.metrics["test"])
            if result.by_activity is not None:  # sparse-user breakdown (report tables)
                record["by_activity"] = result.by_activity.to_dict()
            if result.fit:  # what the model chose on valid, and its cost (sources: auto)
                record["fit"] = result.fit
            record["sources"] = sources(config, run_dir)
        record["split_sha256"] = _split_sha256(run_dir)
    except KeyboardInterrupt:
        raise
    except Exception as error:  # one failing run must not stop the suite
        record["error"] = " ".join(f"{type(error).__name__}: {error}".split())
    record["wall_seconds"] = round(time.perf_counter() - started, 3)
    return record


def _write_json(path: Path, value: Any) -> None:
    # a name of its own per writer: two processes on one --out must not share a temporary file
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _read_record(path: Path) -> tuple[dict[str, Any], float] | None:
    """A run's record and when it was written, or ``None`` if it has none."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), path.stat().st_mtime
    except FileNotFoundError:
        return None


def _lock_path(run_dir: Path) -> Path:
    # beside the run folder, not in it: a rerun deletes the folder, never the lock
    return run_dir.parent / f".{run_dir.name}.lock"


def run_suite(suite: Suite, out_dir: str | Path, *, overrides: Sequence[str] = (),
              data_dir: str | None = None, seeds: Sequence[int] | None = None,
              only: Sequence[str] | None = None, resume: bool = False,
              progress: bool = True) -> BenchmarkOutcome:
    """Train and evaluate every entry of ``suite`` once per seed into ``out_dir``.

    ``overrides`` (``["trainer.epochs=3"]``) apply to every entry; ``seeds`` replaces every
    entry's seeds; ``only`` keeps the named entries (run-folder names, or a row label: the
    ``name`` or ``peer`` shared by the rows of a ``shots`` list or of several tables).
    ``resume`` reuses the records of runs that finished in an earlier call (and reruns failed
    or unfinished ones); without it, an ``out_dir`` that already holds results is refused.

    Several processes may work on one ``out_dir`` at once (start the others with ``resume``):
    each run is held under a lock while it trains, a process skips runs another one holds and
    comes back for them at the end, and it takes over the record the other one wrote (or the
    run itself, if that process died without writing one). So every process ends with the
    whole suite's results and report.
    """
    from tqdm import tqdm

    out = Path(out_dir)
    if not resume and ((out / RESULTS_FILE).exists() or (out / RUNS_DIR).exists()):
        raise ConfigError(f"{out} already holds benchmark results; choose a new --out folder "
                          "or pass --resume to continue")
    entries = [e for e in suite.entries if not only or e.folder in only or e.label in only]
    missing = sorted(set(only or ()) - {e.folder for e in suite.entries}
                     - {e.label for e in suite.entries})
    if missing:
        raise ConfigError(f"--only names unknown entries {missing}; suite has "
                          f"{[e.folder for e in suite.entries]}")
    plan = [(e, s) for e in entries for s in (tuple(seeds) if seeds else e.seeds)]
    run_dirs = [out / RUNS_DIR / e.folder / f"seed-{s}" for e, s in plan]
    out.mkdir(parents=True, exist_ok=True)
    # A failed record written after this moment is a concurrent process's fresh try: kept, not
    # retried again. One from before is an earlier call's, which resume retries.
    since = time.time()
    lookup = _SourceLookup(data_dir)
    records: list[dict[str, Any] | None] = [None] * len(plan)
    bar = tqdm(total=len(plan), desc=f"benchmark {suite.name}", unit="run",
               disable=not progress)

    def settle(i: int, *, wait: bool) -> bool:
        (entry, seed), run_dir = plan[i], run_dirs[i]
        with try_exclusive(_lock_path(run_dir), wait=wait) as held:
            if not held:
                return False
            bar.set_postfix_str(f"{entry.folder} seed {seed}")
            found = _read_record(run_dir / RECORD_FILE)
            kept = found is not None and ("error" not in found[0] or found[1] >= since)
            if kept:
                record = found[0]
            else:
                if run_dir.exists():  # an unfinished or failed earlier try: start it afresh
                    shutil.rmtree(run_dir)
                record = _run_one(entry, seed, entry.run_overrides(seed, tuple(overrides)),
                                  run_dir, data_dir, progress, lookup, suite.peer_python)
                run_dir.mkdir(parents=True, exist_ok=True)
                _write_json(run_dir / RECORD_FILE, record)
            if _needs_units(suite, entry) and "error" not in record:
                _ensure_units(run_dir, data_dir)
        records[i] = record
        _write_json(out / RESULTS_FILE, [r for r in records if r is not None])
        bar.update(1)
        bar.write(_summary_line(entry.folder, record, kept))
        return True

    elsewhere = [i for i in range(len(plan)) if not settle(i, wait=False)]
    if elsewhere:
        bar.write(f"waiting for {len(elsewhere)} run(s) another process is working on")
    for i in elsewhere:
        settle(i, wait=True)
    bar.close()
    return _write_report(suite, out, [r for r in records if r is not None], run_dirs)


def _write_report(suite: Suite, out: Path, records: list[dict[str, Any]],
                  run_dirs: list[Path]) -> BenchmarkOutcome:
    """The ablation, plots and report.md (one process at a time: they share the files)."""
    from fusionrec.experiments.report import render_report

    with exclusive(out / ".report.lock"):
        _write_json(out / RESULTS_FILE, records)
        folders = [d.parent.name for d in run_dirs]
        ablations = _ablations(suite, records, folders, out)
        comparison = _comparison(suite, records, folders, out)
        figures = _figures(out, records, run_dirs, suite, ablations)
        report = out / REPORT_FILE
        report.write_text(render_report(records, suite, ablations, figures, comparison),
                          encoding="utf-8")
    return BenchmarkOutcome(records, out / RESULTS_FILE, report)


def _needs_units(suite: Suite, entry: SuiteEntry) -> bool:
    """Whether a run's per-unit test values feed the ablation or a comparison (peer runs
    leave no model folder to score)."""
    if entry.peer:
        return False
    return suite.ablation is not None or (suite.compare is not None
                                          and entry.folder in suite.compare.entries)


def _ensure_units(run_dir: Path, data_dir: str | None) -> None:
    """Per-unit test values for the ablation or comparisons; a run without them is only left
    out of those."""
    from fusionrec.experiments.units import UNITS_FILE, write_run_units

    if (run_dir / UNITS_FILE).is_file():
        return
    try:
        write_run_units(run_dir, data_dir)
    except Exception as error:  # the run itself succeeded; the ablation notes the gap
        log.warning("no per-unit test values for %s: %s", run_dir, error)


def _ablations(suite: Suite, records: list[dict[str, Any]], folders: list[str], out: Path
               ) -> list:
    if suite.ablation is None:
        return []
    from fusionrec.experiments.ablation import load_units_from, run_ablation

    try:
        ablation = run_ablation(suite.ablation, records, folders, load_units_from(out, RUNS_DIR))
    except ConfigError as error:  # e.g. the reference failed: report the rest regardless
        log.warning("ablation skipped: %s", error)
        return []
    _write_json(out / ABLATION_FILE, ablation.to_dict())
    return [ablation]


def _comparison(suite: Suite, records: list[dict[str, Any]], folders: list[str], out: Path):
    if suite.compare is None:
        return None
    from fusionrec.experiments.ablation import load_units_from
    from fusionrec.experiments.compare import COMPARE_FILE, run_comparison

    comparison = run_comparison(suite.compare, records, folders,
                                load_units_from(out, RUNS_DIR),
                                lambda folder, seed: out / RUNS_DIR / folder / f"seed-{seed}")
    _write_json(out / COMPARE_FILE, comparison.to_dict())
    return comparison


def _figures(out: Path, records, run_dirs, suite: Suite, ablations) -> dict:
    from fusionrec.experiments.plots import write_figures
    from fusionrec.experiments.report import figure_tables

    try:
        return write_figures(out, figure_tables(records, run_dirs, suite), ablations)
    except Exception as error:  # a plotting problem must not cost the tables
        log.warning("plots skipped: %s", error)
        return {}


def _summary_line(name: str, record: dict[str, Any], kept: bool = False) -> str:
    """One line per run; ``kept``: its record came from an earlier call or another process."""
    if "error" in record:
        return f"FAILED {name} seed {record['seed']}: {record['error']}"
    shown = [(k, v) for k, v in record["metrics"].items() if k in ("auc", "f1", "ndcg@10",
                                                                   "recall@10")]
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in shown)
    return (f"{'kept' if kept else 'done':<6} {name} seed {record['seed']}: {metrics} "
            f"({record['wall_seconds']:.1f}s)")
