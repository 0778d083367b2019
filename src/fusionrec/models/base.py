"""The model contract: what every registered model provides, and the capabilities callers may
rely on without probing. Evaluation, the Trainer, tuning, the benchmark runner and the CLI
ask a model only for what is declared here.

- :class:`Recommender`: the verbs and declarations of every model in
  :data:`fusionrec.models.registry.MODELS`.
- :class:`RecommenderBase`: the defaults of the optional declarations; every registered model
  inherits it (the conformance tests check it).
- :class:`TorchTrainable`: a torch model the shared Trainer trains (``build`` /
  ``training_batches`` / ``loss``); such a model is built with the run's ``trainer`` settings.
- :class:`SharesTextFeatures`: a model whose frozen LM text features can be computed outside
  it and swapped in (tuning encodes them once for every trial).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Iterable, Protocol, runtime_checkable

import numpy as np

from fusionrec.data.split import Pairs, Split
from fusionrec.errors import FusionRecError
from fusionrec.trainer_config import TrainerConfig


@runtime_checkable
class Recommender(Protocol):
    """Every registered model.

    ``users``/``items`` are dense indices. ``score`` returns one real score per (user, item)
    row (higher = more likely); for CTR models a logit, or a probability when the model declares
    ``outputs_probabilities``. ``score_pairs`` scores rows of a :class:`Pairs`, reading each
    row's own history (``history_items``) when the model uses one. ``recommend`` returns
    ``(items, scores)`` arrays of shape ``(len(users), k)``, best first.

    Declarations: ``name`` (the registry name); ``sources``, the data sources the model reads
    (class-level; empty: whatever the dataset it is given holds), and ``used_sources()``, those
    a fitted model actually read; ``fit_details()``, what it chose on the valid split while
    fitting (for the run to record); ``cold_start``, the kinds (``"items"``, ``"users"``) it can
    score with no training interaction (evaluation refuses the others on cold-start splits,
    ``fusionrec.evaluation.cold``); ``outputs_probabilities``.
    """

    name: str
    sources: tuple[str, ...]
    cold_start: frozenset[str]
    outputs_probabilities: bool

    def get_params(self) -> dict[str, Any]: ...

    def fit(self, split: Split) -> "Recommender": ...

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray: ...

    def score_pairs(self, pairs: Pairs) -> np.ndarray: ...

    def recommend(self, users: np.ndarray, k: int = 10,
                  exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]: ...

    def used_sources(self) -> tuple[str, ...]: ...

    def fit_details(self) -> dict[str, Any]: ...

    def save(self, directory) -> Any: ...

    @classmethod
    def load(cls, directory) -> "Recommender": ...


class RecommenderBase:
    """Defaults of :class:`Recommender`'s declarations, so a model states only what differs:
    it reads no declared sources, scores no cold entity, outputs logits (CTR), and
    ``score_pairs`` ignores the rows' history."""

    name: ClassVar[str]
    sources: ClassVar[tuple[str, ...]] = ()
    cold_start: ClassVar[frozenset[str]] = frozenset()
    outputs_probabilities: ClassVar[bool] = False

    def used_sources(self) -> tuple[str, ...]:
        """The sources this (fitted) model read; models that choose them from the data
        override this."""
        return tuple(self.sources)

    def score_pairs(self, pairs: Pairs) -> np.ndarray:
        return self.score(pairs.user, pairs.item)

    def fit_details(self) -> dict[str, Any]:
        """What a fitted model decided on the valid split while fitting, for the run to record
        (JSON-ready; e.g. the fusion model's ``sources: auto`` candidates); empty by default."""
        return {}


@runtime_checkable
class TorchTrainable(Protocol):
    """What a torch model gives the shared Trainer (``fusionrec.training.trainer``).

    - ``build(split, config)``: create fresh parameters sized for ``split`` (torch's RNG is
      already seeded), keep the module as ``module_`` so ``score``/``recommend`` use it, and
      return it.
    - ``training_batches(split, batch_size, rng)``: one epoch of batches, drawn with ``rng``.
    - ``loss(module, batch)``: a scalar tensor; must call ``module(...)`` exactly once (the
      module may be wrapped, e.g. by DDP).
    - ``param_groups(module)``: what the optimiser updates: the module's parameters by default,
      or param groups (dicts with ``params`` and an optional ``lr``).
    - ``training_config(config)``: the settings to train with; by default the run's ``trainer``
      section as given, replaced by a model whose own params carry them (the cross-encoder).
    - ``validation_metrics(split)``: None by default (the Trainer evaluates the valid part);
      a model that validates on rows of its own returns its metrics.
    - ``trained(summary)``: called once the best weights are back in place; nothing by default.

    A module with no trainable parameter was fitted by ``build`` alone: no epoch runs.

    A registered model that implements it subclasses it (so it gets ``param_groups``) and takes
    the run's ``trainer`` settings as a constructor keyword (``training.run.build_model``), and
    a ``runner`` (:data:`TrainerFactory`) that its ``fit`` trains with.
    """

    def build(self, split: Split, config) -> Any: ...

    def training_batches(self, split: Split, batch_size: int,
                         rng: np.random.Generator) -> Iterable[Any]: ...

    def loss(self, module, batch) -> Any: ...

    def param_groups(self, module) -> Iterable[Any]:
        return module.parameters()

    def training_config(self, config) -> Any:
        return config

    def validation_metrics(self, split: Split) -> dict[str, float] | None:
        return None

    def trained(self, summary) -> None:
        return None


#: Makes the shared Trainer from a torch model's trainer settings: ``runner(settings)`` returns
#: an object whose ``fit(model, split)`` trains the model in place (and leaves its
#: ``TrainingSummary`` in ``summary_``: monitor, best valid value, epochs run), e.g.
#: ``functools.partial(Trainer, evaluate=evaluate)``. The Trainer and its validation live in
#: layers above the models, so a model never imports them: its ``fit`` is handed one.
TrainerFactory = Callable[[TrainerConfig], Any]


class ModelError(FusionRecError, ValueError):
    """A model asked to do what it was not set up for (e.g. ``fit`` with no runner)."""


def fit_with_runner(model, split: Split, settings: TrainerConfig,
                    runner: TrainerFactory | None):
    """``model.fit(split)`` of a :class:`TorchTrainable`: train it with ``runner(settings)``."""
    if runner is None:
        raise ModelError(f"{type(model).__name__} trains in the shared Trainer: build it with "
                         "fusionrec.api.make_model(name, ...), or pass "
                         "runner=functools.partial(Trainer, evaluate=evaluate)")
    runner(settings).fit(model, split)
    return model


@runtime_checkable
class SharesTextFeatures(Protocol):
    """A model whose item-text features come from a frozen LM and may be supplied from outside
    (computed once and shared, e.g. across tuning trials)."""

    def frozen_text_encoder(self, features) -> Any:
        """The encoder settings (``EncoderConfig``) this model would encode ``features``' texts
        with, frozen; None when it reads no frozen text features from them."""
        ...

    def set_text_features(self, features) -> Any:
        """Use these ``TextFeatures`` instead of encoding; returns the model."""
        ...


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-``k`` of a ``(n_users, n_items)`` score matrix, best first.

    Entries equal to ``-inf`` (excluded items) sort last; ``k`` is clipped to the item count.
    """
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # (n_users, k), unordered
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)
