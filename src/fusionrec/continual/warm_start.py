"""Warm-starting a servable model on a grown dataset from a finished run's weights.

A run folder keeps what a model scores with (the fusion model's per-source *tables*,
LightGCN's propagated vectors), not always its trainable weights; those are in the Trainer's
checkpoint (``checkpoints/``: the best weights, or the last ones when training had no
validation). The model accepts the checkpoint only when it belongs to the run's (checksummed)
model (its ``check_parent``), so a stale or foreign checkpoint is refused.

The model copies the weights into the module built on the grown data (its ``warm_start``):
rows by keys that do not depend on positions (raw user/item ids, entity ids, feature names),
so a user, item or tag the parent never saw keeps the fresh row ``build`` gave it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
import numpy as np

from fusionrec.data.schema import Dataset
from fusionrec.data.split import Pairs, Split
from fusionrec.errors import FusionRecError
from fusionrec.models.servable import ServableError


class WarmStartError(FusionRecError, ValueError):
    """The parent run cannot seed a warm start (no or mismatched checkpoint, unknown tensor)."""


@dataclass(frozen=True)
class WarmWeights:
    """The parent's full module state and the features it was built on (for the row keys)."""

    tensors: dict        # name -> torch.Tensor
    features: Dataset
    source: str          # "best" or "last": which checkpoint weights


def read_warm_weights(run_dir: str | Path, model, features: Dataset) -> WarmWeights:
    """The module weights behind ``model`` (the run's loaded servable model) from the run's
    checkpoint; ``features`` is the run's ``split.features``."""
    from safetensors.torch import load_file

    from fusionrec.training.checkpoint import CHECKPOINT_DIR

    folder = Path(run_dir) / CHECKPOINT_DIR
    meta = folder / "last.json"
    if not meta.is_file():
        raise WarmStartError(f"{run_dir} has no {CHECKPOINT_DIR}/last.json: a warm start needs "
                             "the Trainer's checkpoint (the run folder itself keeps only "
                             "what the model scores with), so retrain a run made by "
                             "`fusionrec train`")
    state = json.loads(meta.read_text(encoding="utf-8"))
    tensors = load_file(str(folder / state["weights_file"]))
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    last = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    weights, source = (best, "best") if best else (last, "last")
    try:
        model.check_parent(weights)
    except ServableError as error:
        raise WarmStartError(f"{folder}: {error}") from None
    return WarmWeights(weights, features, source)


class WarmStart:
    """A Trainable for the shared Trainer: ``model`` is built for the new split as usual, then
    started from ``warm``; ``seen`` (every training pair of the grown run, not just the rows of
    this pass) becomes the model's seen items, so rankings skip all of a user's known items."""

    def __init__(self, model, warm: WarmWeights, seen: Pairs) -> None:
        self.model = model
        self.warm = warm
        self.seen = seen
        self.rows_: dict[str, int] = {}

    def build(self, split: Split, config):
        from fusionrec.models.common.ranking import SeenItems

        module = self.model.build(split, config)
        seen = SeenItems.from_pairs(self.seen, split.features.n_users)
        try:
            self.rows_ = self.model.warm_start(module, self.warm.tensors, self.warm.features,
                                               split.features, seen)
        except ServableError as error:
            raise WarmStartError(str(error)) from None
        return module

    def training_batches(self, split: Split, batch_size: int, rng: np.random.Generator):
        return self.model.training_batches(split, batch_size, rng)

    def loss(self, module, batch):
        return self.model.loss(module, batch)

    def param_groups(self, module):
        return self.model.param_groups(module)

    def training_config(self, config):
        return self.model.training_config(config)

    def validation_metrics(self, split: Split):
        return self.model.validation_metrics(split)

    def trained(self, summary) -> None:
        self.model.trained(summary)

    # what evaluation asks of a model while the Trainer validates this wrapper
    @property
    def outputs_probabilities(self) -> bool:
        return self.model.outputs_probabilities

    def score(self, users, items):
        return self.model.score(users, items)

    def score_pairs(self, pairs):
        return self.model.score_pairs(pairs)

    def recommend(self, users, k: int = 10, exclude_seen: bool = True):
        return self.model.recommend(users, k, exclude_seen)
