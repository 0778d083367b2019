"""``sources: auto``: the fusion model picks its sources on the validation split.

Greedy forward selection. Train ``interactions`` alone; then, round by round, train the current
set plus each unused source and keep the best addition while it beats the current set's best
valid value of the Trainer's monitored metric (the early-stopping metric: the valid split,
never test). The chosen set is then trained once more by the run's own Trainer (same seed, so
it reproduces the winning candidate), which writes the run folder.

Cost, with ``S`` available sources: 1 training when ``S == 1`` (no candidate is trained), else
between ``1 + (S - 1)`` candidate trainings (no source helps) and ``1 + S (S - 1) / 2`` (every
source helps), plus the final one; :class:`SourceSelection` records each candidate's valid
value, epochs and seconds, and the run records it (``model.json`` and the run manifest).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from fusionrec.trainer_config import higher_is_better

log = logging.getLogger(__name__)
#: The set every selection starts from: the collaborative signal is always there.
BASE_SOURCE = "interactions"


@dataclass(frozen=True)
class Trained:
    """What one candidate's training gave: the monitored metric's name, its best valid value
    and the epochs run."""

    monitor: str
    valid: float
    epochs: int


@dataclass(frozen=True)
class Candidate:
    sources: tuple[str, ...]
    valid: float  # best valid value of ``monitor`` over the candidate's epochs
    epochs: int
    seconds: float


@dataclass(frozen=True)
class SourceSelection:
    """Every candidate trained, in order, and the set chosen (the best on valid)."""

    monitor: str
    candidates: tuple[Candidate, ...]
    chosen: tuple[str, ...]

    @property
    def trainings(self) -> int:
        """Trainings the selection cost, the final training of ``chosen`` included."""
        return len(self.candidates) + 1

    @property
    def seconds(self) -> float:
        """Wall time of the candidate trainings (the final training not included)."""
        return sum(c.seconds for c in self.candidates)

    def to_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "chosen": list(self.chosen),
                "trainings": self.trainings, "seconds": round(self.seconds, 3),
                "candidates": [{"sources": list(c.sources), "valid": c.valid,
                                "epochs": c.epochs, "seconds": c.seconds}
                               for c in self.candidates]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SourceSelection":
        candidates = tuple(Candidate(tuple(c["sources"]), float(c["valid"]), int(c["epochs"]),
                                     float(c["seconds"])) for c in data["candidates"])
        return cls(data["monitor"], candidates, tuple(data["chosen"]))


def greedy_sources(available: tuple[str, ...],
                   train: Callable[[tuple[str, ...]], Trained]) -> SourceSelection:
    """Forward selection over ``available`` (canonical order, ``interactions`` first), calling
    ``train(sources)`` once per candidate set. A source joins only if it strictly improves the
    best valid value so far; ties keep the smaller set."""
    if BASE_SOURCE not in available:
        raise ValueError(f"sources auto starts from {BASE_SOURCE!r}, which the data lacks")
    order = {name: at for at, name in enumerate(available)}
    candidates: list[Candidate] = []
    monitor = ""

    def run(sources: tuple[str, ...]) -> Candidate:
        nonlocal monitor
        started = time.perf_counter()
        trained = train(sources)
        monitor = trained.monitor
        candidate = Candidate(sources, float(trained.valid), int(trained.epochs),
                              round(time.perf_counter() - started, 3))
        candidates.append(candidate)
        log.info("fusion sources auto: %s -> valid %s %.4f (%d epochs, %.1f s)",
                 list(sources), monitor, candidate.valid, candidate.epochs, candidate.seconds)
        return candidate

    current = (BASE_SOURCE,)
    if len(available) == 1:  # nothing to choose: no candidate training
        return SourceSelection("", (), current)
    best = run(current)
    up = higher_is_better(monitor)

    def better(a: float, b: float) -> bool:
        return a > b if up else a < b

    while True:
        rest = [s for s in available if s not in current]
        if not rest:
            break
        trials = [run(tuple(sorted(current + (s,), key=order.__getitem__))) for s in rest]
        top = trials[0]
        for trial in trials[1:]:
            if better(trial.valid, top.valid):
                top = trial
        if not better(top.valid, best.valid):
            break
        best, current = top, top.sources
    log.info("fusion sources auto: chose %s after %d candidate trainings (%.1f s)",
             list(current), len(candidates), sum(c.seconds for c in candidates))
    return SourceSelection(monitor, tuple(candidates), current)


def select_sources(model, split, settings) -> SourceSelection:
    """:func:`greedy_sources` for a ``FusionRecommender`` whose ``sources`` is ``auto``: each
    candidate is a copy of ``model`` with fixed sources, trained on ``split`` by
    ``model.runner(settings)`` (the injected Trainer; its ``summary_`` holds the best valid
    value). The LM text features are computed once and shared by every candidate."""
    from fusionrec.models.base import ModelError
    from fusionrec.models.fusion.build import available_sources

    if model.runner is None:
        raise ModelError("fusion: sources auto trains candidate source sets in the shared "
                         "Trainer: build the model with fusionrec.api.make_model, or pass "
                         "runner=functools.partial(Trainer, evaluate=evaluate)")
    available = available_sources(split.features)
    text = model.text_features
    if text is None and "item_text" in available and len(available) > 1:
        from dataclasses import replace

        from fusionrec.models.fusion.build import load_text_features

        frozen = model.frozen_text_encoder(split.features)
        if frozen is not None:
            if frozen.device == "auto":  # as build does: the encoder follows trainer.device
                frozen = replace(frozen, device=settings.device)
            text = load_text_features(split.features, frozen)
    params = {k: v for k, v in model.get_params().items() if k != "trainer"}

    def train(sources: tuple[str, ...]) -> Trained:
        candidate = type(model)(trainer=settings, **{**params, "sources": list(sources)})
        if text is not None:
            candidate.set_text_features(text)
        trainer = model.runner(settings)
        trainer.fit(candidate, split)
        summary = trainer.summary_
        if summary.best_value is None:
            raise ModelError("fusion: sources auto needs a valid split to choose on; "
                             f"{split.protocol!r} gave no valid metric")
        return Trained(summary.monitor, summary.best_value, summary.epochs_run)

    return greedy_sources(available, train)
