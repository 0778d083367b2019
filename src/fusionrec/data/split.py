"""Labelled (user, item) pairs and the train/valid/test split a protocol produces."""

from __future__ import annotations

from fusionrec.errors import FusionRecError

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np

from fusionrec.data.schema import Dataset, _check_lengths, _frozen_array, _optional_array

Task = Literal["ctr", "topk", "links"]
ColdKind = Literal["items", "users"]


class ColdStartUnsupported(FusionRecError, RuntimeError):
    """A model was asked to score users or items it has no input for (a pure ID model on a
    cold-start split). Raised instead of returning scores from untrained embeddings."""


@dataclass(frozen=True)
class Pairs:
    """(user, item, label) rows in dense indices.

    For top-K protocols every row is a positive (label 1). For CTR protocols labels are 0/1.
    For link protocols (task ``"links"``) ``item`` holds the other *user*'s index.
    ``history_items``/``history_labels`` (shape ``(n, h)``, ``-1`` padded) carry a per-row
    context, e.g. the 10 previous movies of the few-shot TALLRec protocol.
    """

    user: np.ndarray
    item: np.ndarray
    label: np.ndarray
    history_items: np.ndarray | None = None
    history_labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        _check_lengths("pairs", user=self.user, item=self.item, label=self.label,
                       history_items=self.history_items, history_labels=self.history_labels)
        object.__setattr__(self, "user", _frozen_array(self.user, np.int64))
        object.__setattr__(self, "item", _frozen_array(self.item, np.int64))
        object.__setattr__(self, "label", _frozen_array(self.label, np.float32))
        object.__setattr__(self, "history_items", _optional_array(self.history_items, np.int64))
        object.__setattr__(self, "history_labels",
                           _optional_array(self.history_labels, np.float32))

    def __len__(self) -> int:
        return len(self.user)

    def take(self, rows: np.ndarray) -> "Pairs":
        pick = lambda col: None if col is None else col[rows]  # noqa: E731
        return Pairs(self.user[rows], self.item[rows], self.label[rows],
                     pick(self.history_items), pick(self.history_labels))

    def positives(self) -> "Pairs":
        return self.take(self.label > 0.5)


@dataclass(frozen=True)
class ColdStart:
    """What a cold-start protocol held out, for evaluation.

    ``kind``: ``"items"`` or ``"users"``; ``entities``: the cold item or user indices (valid
    and test together; none of them has a training positive unless ``user_shots`` gave it
    one). ``valid_candidates`` / ``test_candidates``: the items each part is ranked among
    (``rank_among: cold``), or None to rank over every item (``rank_among: all``).
    """

    kind: ColdKind
    entities: np.ndarray
    valid_candidates: np.ndarray | None = None
    test_candidates: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("items", "users"):
            raise ValueError(f"ColdStart.kind must be items or users, got {self.kind!r}")
        object.__setattr__(self, "entities", _frozen_array(self.entities, np.int64))
        object.__setattr__(self, "valid_candidates",
                           _optional_array(self.valid_candidates, np.int64))
        object.__setattr__(self, "test_candidates",
                           _optional_array(self.test_candidates, np.int64))

    def candidates(self, part: str) -> np.ndarray | None:
        """Items ``part`` is ranked among; None means every item (and for ``train``)."""
        return {"valid": self.valid_candidates, "test": self.test_candidates}.get(part)


@dataclass(frozen=True)
class Split:
    """What a protocol hands to models and evaluation.

    ``features`` is the dataset every model may read: its interactions are the *training*
    positives only, and every side source that pairs a user with an item (tag assignments,
    reviews) has been filtered so that no valid/test pair is visible through it.
    """

    protocol: str
    task: Task
    seed: int
    train: Pairs
    valid: Pairs
    test: Pairs
    features: Dataset
    params: dict = dataclasses.field(default_factory=dict)
    cold: ColdStart | None = None  # set by the cold-start protocols only

    def part(self, name: str) -> Pairs:
        if name not in ("train", "valid", "test"):
            raise ValueError(f"unknown split part {name!r}; expected train, valid or test")
        return getattr(self, name)
