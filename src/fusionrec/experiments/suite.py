"""Benchmark suites: which run configs to train, with which overrides and seeds, beside which
published numbers. Loaded from YAML and validated (errors name the key)::

    name: lastfm-ctr
    description: one paragraph for the report
    seeds: [0, 1, 2]                   # default for every entry
    metrics: [auc, f1, logloss]        # report columns (default: every metric, in order); or
                                       # per protocol: {ctr-kgcn: [auc, f1], topk-random: [...]}
    peer_python: .venv-peer/bin/python # optional: the peer virtualenv's python (else
                                       # $FUSIONREC_PEER_PYTHON, else .venv-peer at the repo root)
    entries:
      - config: configs/lastfm-kg-ctr-bprmf.yaml
        name: bpr-mf                   # row label and run-folder name (default: config stem)
        folder: ctr-bpr-mf             # run-folder name only (default: name), for suites that
                                       # repeat a label over several datasets
        set: {trainer.epochs: 30}      # overrides (mapping or ["key=value", ...])
        seeds: [0]                     # this entry only
        shots: 64                      # sets protocol.params.shots (0: zero-shot); every
                                       # protocol takes it (fusionrec.data.protocols.shots).
                                       # A list [16, 64] makes one row per k, same label,
                                       # run folders <name or config stem>-<k>shot
        sources: [interactions, kg]    # side sources not listed are switched off
      - config: configs/lastfm-kg-ctr-popularity.yaml   # fixes data, protocol and evaluation
        peer: implicit-als             # a peer library model on the same split, scored by
                                       # FusionRec's metric code (fusionrec.experiments.peer_entry)
    ablation: {reference: fusion}      # optional: paired source ablation against this entry
                                       # (fusionrec.experiments.ablation)
    compare:                           # optional: paired B - A deltas of named entries, with
      pairs: [{a: fusion, b: bpr-mf}]  # each row's cost (fusionrec.experiments.compare)
    published:
      - {model: KGCN-concat, metrics: {auc: 0.796}, source: "KGCN paper, via OpenHGNN README",
         dataset: lastfm-kg, protocol: ctr-kgcn}    # dataset/protocol: optional filters
    include: [ml100k-cold-items.yaml]  # optional: every entry of these suites too, run folders
                                       # <included suite's name>-<folder>, with their seeds and
                                       # published figures (not their ablation or description)

Relative config paths resolve against the suite's folder, then its parent (so a suite in
``benchmarks/`` can name ``configs/x.yaml``), then the working directory.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from fusionrec.config import ConfigError, read_yaml
from fusionrec.errors import did_you_mean


@dataclass(frozen=True)
class SuiteEntry:
    """One row of a suite: a run config trained once per seed, or, with ``peer``, a peer
    library model (:data:`fusionrec.experiments.peers.PEER_LIBRARIES`) run on the split that
    config defines. ``name`` (optional) labels the row in place of the model name; ``folder``
    names its run folders (``folder_name``, else ``name``, else ``peer``, else the config's
    stem)."""

    name: str | None
    config: Path
    overrides: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0,)
    shots: int | None = None
    sources: tuple[str, ...] | None = None
    folder_name: str | None = None
    peer: str | None = None

    def __post_init__(self) -> None:
        for name in (self.name, self.folder_name):
            if name is not None and (not name or "/" in name or name.startswith(".")):
                raise ConfigError(f"entry name must be a plain folder name, got {name!r}")
        if not self.seeds or any(not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ConfigError(f"entries[{self.folder}].seeds must be a list of ints >= 0, "
                              f"got {self.seeds!r}")
        if self.shots is not None and (not isinstance(self.shots, int)
                                       or isinstance(self.shots, bool) or self.shots < 0):
            raise ConfigError(f"entries[{self.folder}].shots must be an int >= 0 (0: zero-shot, "
                              f"no training row), got {self.shots!r}")
        if self.sources is not None:
            from fusionrec.data.schema import SOURCE_NAMES

            unknown = sorted(set(self.sources) - set(SOURCE_NAMES))
            if unknown or "interactions" not in self.sources:
                hint = did_you_mean(unknown[0], SOURCE_NAMES) if unknown else ""
                raise ConfigError(f"entries[{self.folder}].sources must include interactions and "
                                  f"name sources among {SOURCE_NAMES}, got {list(self.sources)}"
                                  f"{hint}")
        if self.peer is not None:
            from fusionrec.experiments.peers import PEER_LIBRARIES

            if self.peer not in PEER_LIBRARIES:
                raise ConfigError(f"entries[{self.folder}].peer must be one of "
                                  f"{sorted(PEER_LIBRARIES)}, got {self.peer!r}")
            if self.sources is not None:  # peers learn from training interactions only
                raise ConfigError(f"entries[{self.folder}]: a peer entry takes no sources")

    @property
    def label(self) -> str | None:
        """The row label records carry in place of the config's model name."""
        return self.name or self.peer

    @property
    def folder(self) -> str:
        return self.folder_name or self.name or self.peer or self.config.stem

    def run_overrides(self, seed: int, extra: tuple[str, ...] = ()) -> list[str]:
        """Overrides for one run: the entry's, its shots/sources, ``extra`` (the command
        line's), then the seed (split and training alike)."""
        found = list(self.overrides)
        if self.shots is not None:
            found.append(f"protocol.params.shots={self.shots}")
        if self.sources is not None:
            from fusionrec.data.schema import SOURCE_NAMES

            off = [s for s in SOURCE_NAMES[1:] if s not in self.sources]
            found.append(f"data.exclude_sources=[{', '.join(off)}]")
        return [*found, *extra, f"protocol.seed={seed}", f"trainer.seed={seed}"]


@dataclass(frozen=True)
class Published:
    """A reference result from the literature, shown under the matching report tables."""

    model: str
    metrics: Mapping[str, float]
    source: str
    dataset: str | None = None
    protocol: str | None = None

    def matches(self, dataset: str | None, protocol: str | None) -> bool:
        return (self.dataset in (None, dataset)) and (self.protocol in (None, protocol))


@dataclass(frozen=True)
class Suite:
    name: str
    entries: tuple[SuiteEntry, ...]
    published: tuple[Published, ...] = ()
    metrics: tuple[str, ...] = ()
    description: str = ""
    path: Path | None = field(default=None, compare=False)
    ablation: Any = None  # an AblationSpec, or None
    compare: Any = None  # a CompareSpec, or None
    protocol_metrics: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    peer_python: Path | None = None  # the suite's peer_python (see peer_entry.peer_python)

    def metrics_for(self, protocol: str | None) -> tuple[str, ...]:
        """Report columns for a table of ``protocol``: its own list, else ``metrics``."""
        return tuple(self.protocol_metrics.get(protocol, self.metrics)) if protocol \
            else self.metrics


def _overrides(value: Any, where: str) -> tuple[str, ...]:
    """``{"trainer.epochs": 3}`` or ``["trainer.epochs=3"]`` → ``("trainer.epochs=3",)``."""
    import json

    if value is None:
        return ()
    if isinstance(value, Mapping):  # JSON is YAML, and keeps "yes"/"1e-3" strings as written
        return tuple(f"{k}={json.dumps(v)}" for k, v in value.items())
    if isinstance(value, list) and all(isinstance(v, str) and "=" in v for v in value):
        return tuple(value)
    raise ConfigError(f"{where}.set must be a mapping or a list of key=value, got {value!r}")


def resolve_config_path(path: str, suite_dir: Path) -> Path:
    given = Path(path).expanduser()
    if given.is_absolute():
        return given
    for base in (suite_dir, suite_dir.parent, Path.cwd()):
        if (base / given).is_file():
            return base / given
    return suite_dir.parent / given  # missing: the run records "config file not found"


def _int_list(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool)
                                              for v in value):
        raise ConfigError(f"{where} must be a list of ints, got {value!r}")
    return tuple(value)


def _entries(raw: Any, index: int, seeds: tuple[int, ...], suite_dir: Path
             ) -> list[SuiteEntry]:
    """One entry, or one per k when ``shots`` is a list."""
    shots = raw.get("shots") if isinstance(raw, Mapping) else None
    if not isinstance(shots, list):
        return [_entry(raw, index, seeds, suite_dir)]
    if not shots or len(set(map(str, shots))) != len(shots):
        raise ConfigError(f"entries[{index}].shots must be an int or a non-empty list of "
                          f"distinct ints, got {shots!r}")
    found = []
    for k in shots:
        entry = _entry({**raw, "shots": k}, index, seeds, suite_dir)
        found.append(dataclasses.replace(entry, folder_name=f"{entry.folder}-{k}shot"))
    return found


def _entry(raw: Any, index: int, seeds: tuple[int, ...], suite_dir: Path) -> SuiteEntry:
    where = f"entries[{index}]"
    if not isinstance(raw, Mapping) or not isinstance(raw.get("config"), str):
        raise ConfigError(f"{where} must be a mapping with a config path, got {raw!r}")
    known = {"name", "config", "set", "seeds", "shots", "sources", "folder", "peer"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    sources = raw.get("sources")
    if sources is not None and not isinstance(sources, list):
        raise ConfigError(f"{where}.sources must be a list of source names, got {sources!r}")
    for key in ("folder", "peer"):
        if key in raw and not (isinstance(raw[key], str) and raw[key]):
            raise ConfigError(f"{where}.{key} must be a non-empty string, got {raw[key]!r}")
    return SuiteEntry(
        name=str(raw["name"]) if raw.get("name") else None,
        config=resolve_config_path(raw["config"], suite_dir),
        overrides=_overrides(raw.get("set"), where),
        seeds=_int_list(raw["seeds"], f"{where}.seeds") if "seeds" in raw else seeds,
        shots=raw.get("shots"),
        sources=tuple(sources) if sources is not None else None,
        folder_name=raw.get("folder"), peer=raw.get("peer"))


def _published(raw: Any, index: int) -> Published:
    where = f"published[{index}]"
    if not isinstance(raw, Mapping) or not isinstance(raw.get("metrics"), Mapping) \
            or not raw.get("model") or not raw.get("source"):
        raise ConfigError(f"{where} needs model, metrics (name: value) and source, got {raw!r}")
    metrics = {}
    for name, value in raw["metrics"].items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}.metrics.{name} must be a number, got {value!r}")
        metrics[str(name)] = float(value)
    return Published(str(raw["model"]), metrics, str(raw["source"]), raw.get("dataset"),
                     raw.get("protocol"))


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite YAML."""
    path = Path(path)
    raw = read_yaml(path, "suite")
    if not isinstance(raw, Mapping) or not isinstance(raw.get("entries", []), list) \
            or not (raw.get("entries") or raw.get("include")):
        raise ConfigError(f"{path}: a suite needs a non-empty 'entries' list")
    known = {"name", "description", "seeds", "metrics", "entries", "published", "ablation",
             "compare", "peer_python", "include"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; known: {sorted(known)}")
    seeds = _int_list(raw.get("seeds", [0]), "seeds")
    entries = tuple(e for i, raw_entry in enumerate(raw.get("entries") or [])
                    for e in _entries(raw_entry, i, seeds, path.parent))
    included = _included(raw.get("include"), path)
    entries += tuple(dataclasses.replace(e, folder_name=f"{suite.name}-{e.folder}")
                     for suite in included for e in suite.entries)
    names = [e.folder for e in entries]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"{path}: entry names must be unique; give a name to {duplicated}")
    metrics, protocol_metrics = _metrics(raw.get("metrics"), path)
    published = tuple(_published(p, i) for i, p in enumerate(raw.get("published") or []))
    published += tuple(p for suite in included for p in suite.published if p not in published)
    ablation = None
    if raw.get("ablation") is not None:
        from fusionrec.experiments.ablation import AblationSpec

        ablation = AblationSpec.from_raw(raw["ablation"])
        if ablation.reference not in names:
            raise ConfigError(f"{path}: ablation.reference {ablation.reference!r} is not an "
                              f"entry; entries: {names}")
    compare = None
    if raw.get("compare") is not None:
        from fusionrec.experiments.compare import CompareSpec

        compare = CompareSpec.from_raw(raw["compare"])
        unknown = [name for name in compare.entries if name not in names]
        if unknown:
            raise ConfigError(f"{path}: compare names {unknown}, which are not entries; "
                              f"entries: {names}")
    return Suite(name=str(raw.get("name") or path.stem), entries=entries, published=published,
                 metrics=metrics, description=str(raw.get("description") or "").strip(),
                 path=path, ablation=ablation, compare=compare,
                 protocol_metrics=protocol_metrics,
                 peer_python=_peer_python(raw.get("peer_python"), path))


def _included(value: Any, path: Path) -> tuple[Suite, ...]:
    """The suites named by ``include`` (paths relative to this suite's folder, like configs)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{path}: include must be a list of suite paths, got {value!r}")
    found = []
    for name in value:
        target = resolve_config_path(name, path.parent)
        if Path(target).resolve() == path.resolve():
            raise ConfigError(f"{path}: a suite cannot include itself")
        found.append(load_suite(target))
    return tuple(found)


def _metrics(value: Any, path: Path) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """``(columns for every table, columns per protocol)`` from a list or a mapping
    ``protocol -> list``."""
    def names(found: Any, where: str) -> tuple[str, ...]:
        if not isinstance(found, list) or not all(isinstance(m, str) for m in found):
            raise ConfigError(f"{path}: {where} must be a list of metric names, got {found!r}")
        return tuple(found)

    if isinstance(value, Mapping):
        return (), {str(p): names(m, f"metrics.{p}") for p, m in value.items()}
    return names(value or [], "metrics"), {}


def _peer_python(value: Any, path: Path) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}: peer_python must be a path, got {value!r}")
    return resolve_config_path(value, path.parent)
