"""The pieces of an end-to-end run: config → dataset → split → model, the run's result, and
back from a run folder. ``train_run`` itself evaluates, so it is in ``fusionrec.evaluation.runs``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusionrec.config import ConfigError, DataConfig, ProtocolConfig, RunConfig, load_config
from fusionrec.training import artifacts


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]   # {"valid": {...}, "test": {...}}
    seconds: float
    epochs_run: int
    best_epoch: int | None
    by_activity: Any = None   # test metrics by training interactions (ActivityBreakdown), top-K
    fit: dict = field(default_factory=dict)  # the model's fit_details() (e.g. sources auto)


@dataclass(frozen=True)
class LoadedData:
    dataset: Any
    checksums: dict[str, str]  # input file -> sha256 (empty for generated data)
    root: str | None           # the data root the files were read from
    privacy: dict = field(default_factory=dict)  # e.g. the pseudonym key id (manifest)


def load_data(config: DataConfig, data_dir: str | None = None) -> LoadedData:
    """The configured dataset; ``data_dir`` (e.g. ``--data-dir``) beats the config's."""
    from fusionrec.data.load import load_dataset

    dataset, report = load_dataset(config.spec or config.preset,
                                   data_dir=data_dir or config.data_dir)
    if config.exclude_sources:
        dataset = dataset.without(*config.exclude_sources)
    privacy = {}
    if config.pseudonymize:  # before anything else sees the ids: splits, texts, logs
        from fusionrec.training.pseudonym import pseudonymiser

        keyed = pseudonymiser(config.pseudonym_key_file)
        dataset = keyed.dataset(dataset)
        privacy = {"pseudonymized": True, "pseudonym_key_id": keyed.key_id}
    checksums = input_checksums(report)
    return LoadedData(dataset, checksums, str(report.data_dir) if checksums else None, privacy)


def run_data_dir(config: RunConfig, manifest: dict, explicit: str | None) -> str | None:
    """Data root for re-loading a run's data: ``--data-dir``, else ``$FUSIONREC_DATA`` or the
    config's, else the root the run was trained from (so ``evaluate RUN`` just works)."""
    import os

    if explicit or os.environ.get("FUSIONREC_DATA") or config.data.data_dir:
        return explicit
    return manifest.get("data", {}).get("root")


def input_checksums(report) -> dict[str, str]:
    """sha256 of every input file the loader read (paths as the report names them)."""
    found = {}
    for file_report in getattr(report, "files", ()):
        path = Path(file_report.file)
        if not path.is_absolute():
            path = Path(report.data_dir) / path
        if path.is_file() and file_report.file not in found:
            found[file_report.file] = artifacts.file_sha256(path)
    return found


def make_split(dataset, config: ProtocolConfig):
    from fusionrec.data.protocols import make_split as protocol_split

    return protocol_split(dataset, config.name, config.seed, **dict(config.params))


def build_model(config: RunConfig, runner=None):
    """The configured model, with the run-wide settings its contract declares it takes:

    - a :class:`~fusionrec.models.base.TorchTrainable` model gets the ``trainer`` section, and
      ``runner`` (a :data:`~fusionrec.models.base.TrainerFactory`) when one is given: a model
      that trains more than once while fitting (fusion ``sources: auto``) trains with it;
    - any other model whose parameter dataclass (:data:`fusionrec.models.registry.PARAMS`)
      has a ``seed`` or ``device`` field gets ``trainer.seed`` / ``trainer.device`` (so a
      benchmark's per-seed ``trainer.seed`` reaches models that train outside the Trainer);
    - a model whose parameter dataclass has an ``encoder`` field gets the ``encoder`` section
      (as a plain mapping, when set).

    ``model.params`` wins over each of these."""
    from fusionrec.models.base import TorchTrainable
    from fusionrec.models.registry import model_class, params_class

    cls = model_class(config.model.name)
    declared = {f.name for f in dataclasses.fields(params_class(config.model.name))}
    params = dict(config.model.params)
    if issubclass(cls, TorchTrainable):
        params.setdefault("trainer", config.trainer)
        if runner is not None:
            params.setdefault("runner", runner)
    else:
        for key in ("seed", "device"):
            if key in declared:
                params.setdefault(key, getattr(config.trainer, key))
    if config.encoder is not None and "encoder" in declared:
        params.setdefault("encoder", config.to_dict()["encoder"])
    try:
        return cls(**params)
    except TypeError as error:
        raise ConfigError(f"model.params do not fit {config.model.name!r}: {error}") from None


def evaluation_kwargs(config: RunConfig) -> dict[str, Any]:
    ev = config.evaluation
    return {"ks": ev.ks, "threshold": ev.threshold, "batch_size": ev.batch_size,
            "ctr_batch_size": ev.ctr_batch_size}


def resolve_train_config(config_path: str | None, run_dir: Path, overrides, resume: bool
                         ) -> RunConfig:
    """The config to train with. On ``resume`` the run folder's own ``config.yaml`` rules; a
    different ``-c`` config is an error rather than a silent mix of two runs."""
    stored = run_dir / artifacts.CONFIG_FILE
    if resume and stored.is_file():
        config = load_config(stored, overrides)
        if config_path is not None and load_config(config_path, overrides) != config:
            raise ConfigError(f"--resume: {config_path} differs from {stored}; resume with the "
                             "run's own config (omit -c) or train into a new --out folder")
        return config
    if config_path is None:
        raise ConfigError("give a config with -c CONFIG (or --resume an existing run folder)")
    if not resume and run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(f"{run_dir} already holds files; choose a new --out folder or pass "
                         "--resume to continue that run")
    return load_config(config_path, overrides)


def load_run_split(run_dir: str | Path, config: RunConfig, manifest: dict,
                   data_dir: str | None = None):
    """``(dataset, split)`` of a run, rebuilt from its split manifest against reloaded data that
    must match the data it was trained on."""
    from fusionrec.data.manifest import read_manifest

    data = load_data(config.data, run_data_dir(config, manifest, data_dir))
    dataset = data.dataset
    if config.data.pseudonymize:
        from fusionrec.training.pseudonym import check_key

        check_key(data.privacy["pseudonym_key_id"], manifest)
    if manifest.get("forget"):  # users were forgotten: drop them from the reloaded data
        from fusionrec.training.align import align_to_run

        dataset = align_to_run(dataset, run_dir)
    expected = manifest.get("data", {}).get("fingerprint")
    if expected and artifacts.dataset_fingerprint(dataset) != expected:
        raise artifacts.RunError(f"the dataset loaded for {config.data.spec or config.data.preset}"
                                 " differs from the one this run was trained on (interactions "
                                 "or ids changed); point --data-dir at the original data")
    return dataset, read_manifest(run_dir, dataset)
