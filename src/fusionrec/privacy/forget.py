"""``forget_user``: remove one user from a run folder, the event store and the embedding cache.

What happens, in order (the run folder is checked against its checksums first):

1. the user's id is resolved: the run's own id, or, for a pseudonymised run, the pseudonym of
   the raw id given (needs the key);
2. the run's dataset is reloaded and re-indexed without the user (their slot in ``users.json``
   becomes a tombstone, so every other index stays put); the split manifest is rewritten
   without their rows;
3. every user and item text that changes without the user (their own text; item texts that
   quoted their reviews or tags; friends' texts that listed their items) is dropped from the
   embedding cache;
4. the model: a servable model (fusion, LightGCN, BPR-MF) zeroes their rows and re-derives
   what it can in closed form through its ``forget_user`` (:mod:`fusionrec.models.servable`)
   and is saved again; with ``retrain=True`` (any model) the run is retrained from scratch on
   the remaining data, which removes the user's influence entirely;
5. ``checkpoints/`` is deleted (it holds the pre-forget weights and optimiser state), and a
   copy of the data kept inside the run folder (``fusionrec retrain`` writes one) is rewritten
   without the user;
6. ``manifest.json`` gets fresh checksums, the new data fingerprint and a ``forget`` record
   (a count and what still needs a retrain; never the id);
7. the event store (if given) deletes the user's events, record and friend links.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from fusionrec.errors import FusionRecError
from fusionrec.models.servable import Servable
from fusionrec.training.align import align_users, is_tombstone, tombstoned
from fusionrec.training import artifacts

log = logging.getLogger(__name__)
TELEMETRY = ("checkpoints",)  # folders holding pre-forget state, deleted outright


class ForgetError(FusionRecError, ValueError):
    """The user cannot be forgotten from this run (unknown id, unsupported model)."""


@dataclass(frozen=True)
class ForgetReport:
    run_dir: str
    removed: dict[str, int]            # what was deleted, counted (no ids)
    recomputed: tuple[str, ...]
    needs_retrain: tuple[str, ...]     # empty after a retrain
    retrained: bool
    store: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": self.run_dir, "removed": dict(self.removed),
                "recomputed": list(self.recomputed), "needs_retrain": list(self.needs_retrain),
                "retrained": self.retrained, "store": dict(self.store)}


def run_user_id(user_id: str, users, config, manifest: dict) -> str:
    """The id the run knows the user by: ``user_id`` itself, or its pseudonym."""
    if is_tombstone(user_id):
        raise ForgetError("that id is a tombstone of an already forgotten user")
    if user_id in users:
        return user_id
    if config.data.pseudonymize:
        from fusionrec.training.pseudonym import check_key, pseudonymiser

        keyed = pseudonymiser(config.data.pseudonym_key_file)
        check_key(keyed.key_id, manifest)
        if keyed.pseudonym(user_id) in users:
            return keyed.pseudonym(user_id)
    raise ForgetError("unknown user: the run has no user with that id (or its pseudonym)")


def forget_user(run_dir: str | Path, user_id: str, *, store=None, data_dir: str | None = None,
                retrain: bool = False, progress: bool = False) -> ForgetReport:
    """Forget ``user_id`` (raw or run id) in ``run_dir``; ``store`` is an open event store."""
    from fusionrec.training.run import load_run_split

    run_dir = Path(run_dir)
    config, manifest, model = artifacts.open_run(run_dir)
    dataset, split = load_run_split(run_dir, config, manifest, data_dir)
    run_id = run_user_id(user_id, dataset.users, config, manifest)
    user = dataset.users.index(run_id)
    after = align_users(dataset, tombstoned(dataset.users, user))
    split_after = _split_without(split, user, after)
    social = split.features.social
    had_friends = social is not None and bool(np.isin(user, np.concatenate(
        [social.source, social.target])))
    removed = {"split_rows": sum(len(split.part(p)) - len(split_after.part(p))
                                 for p in ("train", "valid", "test")),
               "interactions": len(dataset.interactions) - len(after.interactions)}
    changed_items, removed["cache_entries"] = _forget_texts(model, split.features,
                                                            split_after.features)
    for folder in TELEMETRY:
        shutil.rmtree(run_dir / folder, ignore_errors=True)
    if _rewrite_owned_data(run_dir, config, after):
        removed["own_data_copy_rewritten"] = 1
    if retrain:
        _retrain(run_dir, config, after, split_after, manifest, progress)
        recomputed, needs = ("everything: retrained without the user",), ()
    elif isinstance(model, Servable):
        from fusionrec.data.manifest import write_manifest

        done = model.forget_user(user, split_after, changed_items, had_friends)
        model.save(run_dir)
        write_manifest(split_after, run_dir, after)
        removed["masked_item_text_rows"] = done.masked_items
        recomputed, needs = done.recomputed, done.needs_retrain
    else:
        raise ForgetError(f"in-place forgetting supports servable models (fusion, lightgcn, "
                          f"bpr-mf); this run holds {model.name!r}: pass "
                          "--retrain to retrain it without the user")
    (run_dir / artifacts.USERS_FILE).write_text(json.dumps(list(after.users.ids)) + "\n",
                                                encoding="utf-8")
    _rewrite_manifest(run_dir, after, needs, retrain)
    counts = store.forget_user(run_id) if store is not None else {}
    log.info("forgot one user in %s (%s)", run_dir, removed)
    return ForgetReport(str(run_dir), removed, recomputed, needs, retrain, counts)


def _rewrite_owned_data(run_dir: Path, config, dataset) -> bool:
    """A run that keeps its own copy of its data (``fusionrec retrain`` writes one inside the
    run folder) gets that copy rewritten without the user; data elsewhere is the data owner's
    to purge (reloading drops forgotten users either way)."""
    from fusionrec.data.export import write_dataset

    spec = Path(config.data.spec).resolve() if config.data.spec else None
    if spec is None or not spec.is_relative_to(run_dir.resolve()) or not spec.is_file():
        return False
    for path in spec.parent.iterdir():
        if path.is_file() and path.suffix in (".csv", ".yaml"):
            path.unlink()
    written = write_dataset(dataset, spec.parent)
    if written.resolve() != spec:
        raise ForgetError(f"rewrote the run's data copy as {written}, but its config reads "
                          f"{spec}")
    return True


def _split_without(split, user: int, dataset):
    """``split`` without the user's rows; features re-derived from ``dataset`` (the dataset
    without the user) by the protocol's own rule."""
    from dataclasses import replace

    from fusionrec.data.protocols import derive_features

    parts = {p: split.part(p).take(split.part(p).user != user)
             for p in ("train", "valid", "test")}
    features = derive_features(dataset, split.protocol, parts["train"], parts["valid"],
                               parts["test"])
    return replace(split, features=features, **parts)


def _forget_texts(model, before, after) -> tuple[np.ndarray, int]:
    """Drop from the model's embedding cache every text that changes without the user;
    returns ``(items whose text changed, cache rows removed)``."""
    encoder_config = model.text_encoder() if isinstance(model, Servable) else None
    if encoder_config is None:
        return np.zeros(0, np.int64), 0
    from fusionrec.encoders.cache import EmbeddingCache, text_hash
    from fusionrec.encoders.factory import build_encoder
    from fusionrec.text.items import ItemTextualiser
    from fusionrec.text.options import TextOptions
    from fusionrec.text.users import UserTextualiser

    options = TextOptions.for_max_length(encoder_config.max_length)
    encoder = build_encoder(encoder_config)
    root = encoder_config.resolved_cache_dir()
    changed_items, removed = np.zeros(0, np.int64), 0
    for textualiser, count in ((ItemTextualiser, before.n_items), (UserTextualiser,
                                                                   before.n_users)):
        old, new = textualiser(before, options), textualiser(after, options)
        old_texts = [old.text(i) for i in range(count)]
        new_texts = [new.text(i) for i in range(count)]
        changed = np.array([i for i in range(count) if old_texts[i] != new_texts[i]], np.int64)
        if textualiser is ItemTextualiser:
            changed_items = changed
        gone = {text_hash(old_texts[i]) for i in changed} - {text_hash(t) for t in new_texts}
        cache = EmbeddingCache(root, encoder.identity, textualiser.version, encoder.dim)
        removed += cache.remove(sorted(gone))
    return changed_items, removed


def _retrain(run_dir: Path, config, dataset, split, manifest: dict, progress: bool) -> None:
    """Train the run's config from scratch on ``split`` (without the user) into ``run_dir``."""
    from fusionrec.evaluation.evaluate import evaluate
    from fusionrec.training.run import build_model, evaluation_kwargs
    from fusionrec.training.trainer import Trainer

    for name in ("metrics.jsonl", "learning_curve.png"):
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / "tensorboard", ignore_errors=True)
    shutil.rmtree(run_dir / "lm", ignore_errors=True)
    model = build_model(config, runner=partial(Trainer, evaluate=evaluate, progress=False,
                                               evaluation=config.evaluation))  # sources: auto
    Trainer(config.trainer, evaluate=evaluate, evaluation=config.evaluation, run_dir=run_dir,
            progress=progress).fit(model, split)
    metrics = {"valid": evaluate(model, split, "valid", **evaluation_kwargs(config))
               if len(split.valid) else {},
               "test": evaluate(model, split, "test", **evaluation_kwargs(config))}
    data = manifest.get("data", {})
    artifacts.write_run(run_dir, config, model, split, dataset, data.get("files"), metrics,
                        data_root=data.get("root"), privacy=manifest.get("privacy"),
                        fit=model.fit_details())
    # ``train --resume`` reloads the source data, where the user may still be: no resuming
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)


def _rewrite_manifest(run_dir: Path, dataset, needs_retrain, retrained: bool) -> None:
    path = run_dir / artifacts.MANIFEST_FILE
    manifest = json.loads(path.read_text(encoding="utf-8"))
    previous = manifest.get("forget") or {}
    manifest["data"]["fingerprint"] = artifacts.dataset_fingerprint(dataset)
    manifest["files"] = {name: artifacts.file_sha256(run_dir / name)
                         for name in artifacts._artefact_names(run_dir)}
    manifest["forget"] = {
        "users": sum(is_tombstone(raw) for raw in dataset.users.ids),
        "retrained": retrained,
        # a retrain clears what earlier in-place forgets left behind
        "needs_retrain": [] if retrained else sorted(set(previous.get("needs_retrain", []))
                                                     | set(needs_retrain)),
        "metrics": "retrained without the forgotten users" if retrained
        else "as trained, before forgetting"}
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
