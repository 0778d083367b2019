"""Typed, immutable containers for every data source FusionRec reads.

Inside the library every user, item, entity, relation and tag is a dense ``int64`` index into a
:class:`Vocabulary`; raw ids appear only at the edges (loaders, CLI, HTTP). Arrays held by these
containers are made read-only so that a table handed downstream can never be changed in place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterable, Mapping

import numpy as np

#: Canonical source names, used in configs, reports and JSON.
SOURCE_NAMES: tuple[str, ...] = (
    "interactions",
    "user_attributes",
    "item_attributes",
    "item_text",
    "social",
    "kg",
    "reviews",
)


def _frozen_array(values, dtype=None) -> np.ndarray:
    array = np.array(values, dtype=dtype, copy=True)
    array.flags.writeable = False
    return array


def _optional_array(values, dtype=None) -> np.ndarray | None:
    return None if values is None else _frozen_array(values, dtype)


def _check_lengths(owner: str, **columns) -> int:
    lengths = {name: len(col) for name, col in columns.items() if col is not None}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{owner}: columns differ in length: {lengths}")
    return next(iter(lengths.values()), 0)


@dataclass(frozen=True)
class Vocabulary:
    """Bijection between raw ids (always strings) and dense indices ``0..n-1``."""

    ids: tuple[str, ...]
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = tuple(str(raw) for raw in self.ids)
        index = {raw: i for i, raw in enumerate(ids)}
        if len(index) != len(ids):
            seen: set[str] = set()
            dupes = [raw for raw in ids if raw in seen or seen.add(raw)]
            raise ValueError(f"Vocabulary has duplicate ids, e.g. {dupes[:3]}")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "_index", MappingProxyType(index))

    @classmethod
    def from_values(cls, values: Iterable) -> "Vocabulary":
        """Vocabulary of the distinct values in first-seen order."""
        return cls(tuple(dict.fromkeys(str(v) for v in values)))

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, raw: object) -> bool:
        return str(raw) in self._index

    def index(self, raw: object) -> int:
        try:
            return self._index[str(raw)]
        except KeyError:
            raise KeyError(f"unknown id {raw!r}") from None

    def indices(self, raws: Iterable) -> np.ndarray:
        """Dense indices of ``raws``; ``-1`` for ids not in the vocabulary."""
        get = self._index.get
        return np.fromiter((get(str(r), -1) for r in raws), dtype=np.int64)

    def raw(self, indices) -> np.ndarray:
        return np.asarray(self.ids, dtype=object)[np.asarray(indices, dtype=np.int64)]


@dataclass(frozen=True)
class Interactions:
    """User–item events. ``rating`` is explicit feedback, ``weight`` an implicit strength
    (e.g. listen count), ``timestamp`` unix seconds."""

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray | None = None
    weight: np.ndarray | None = None
    timestamp: np.ndarray | None = None

    def __post_init__(self) -> None:
        _check_lengths("interactions", user=self.user, item=self.item, rating=self.rating,
                       weight=self.weight, timestamp=self.timestamp)
        object.__setattr__(self, "user", _frozen_array(self.user, np.int64))
        object.__setattr__(self, "item", _frozen_array(self.item, np.int64))
        object.__setattr__(self, "rating", _optional_array(self.rating, np.float32))
        object.__setattr__(self, "weight", _optional_array(self.weight, np.float32))
        object.__setattr__(self, "timestamp", _optional_array(self.timestamp, np.int64))

    def __len__(self) -> int:
        return len(self.user)

    def take(self, rows: np.ndarray) -> "Interactions":
        """Subset by a boolean mask or an index array."""
        pick = lambda col: None if col is None else col[rows]  # noqa: E731
        return Interactions(self.user[rows], self.item[rows], pick(self.rating),
                            pick(self.weight), pick(self.timestamp))


@dataclass(frozen=True)
class Attributes:
    """Per-entity attribute columns aligned with a vocabulary (row ``i`` describes index ``i``).

    Categorical columns hold strings (``""`` when missing), numeric columns floats (NaN when
    missing); multi-valued categorical columns (e.g. genres) hold ``"|"``-joined strings.
    """

    columns: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        _check_lengths("attributes", **dict(self.columns))
        frozen = {name: _frozen_array(col) for name, col in self.columns.items()}
        object.__setattr__(self, "columns", MappingProxyType(frozen))

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


@dataclass(frozen=True)
class Tags:
    """Tag assignments on items. ``user`` is the tagging user (``-1`` when unknown); a row with a
    user pairs that user with the item, so protocols must filter it like an interaction."""

    item: np.ndarray
    tag: np.ndarray
    vocabulary: Vocabulary
    user: np.ndarray | None = None
    weight: np.ndarray | None = None
    timestamp: np.ndarray | None = None

    def __post_init__(self) -> None:
        _check_lengths("tags", item=self.item, tag=self.tag, user=self.user,
                       weight=self.weight, timestamp=self.timestamp)
        object.__setattr__(self, "item", _frozen_array(self.item, np.int64))
        object.__setattr__(self, "tag", _frozen_array(self.tag, np.int64))
        object.__setattr__(self, "user", _optional_array(self.user, np.int64))
        object.__setattr__(self, "weight", _optional_array(self.weight, np.float32))
        object.__setattr__(self, "timestamp", _optional_array(self.timestamp, np.int64))

    def __len__(self) -> int:
        return len(self.item)

    def take(self, rows: np.ndarray) -> "Tags":
        pick = lambda col: None if col is None else col[rows]  # noqa: E731
        return Tags(self.item[rows], self.tag[rows], self.vocabulary, pick(self.user),
                    pick(self.weight), pick(self.timestamp))


@dataclass(frozen=True)
class ItemAttributes:
    """Item attribute columns (aligned with the item vocabulary) plus optional tag assignments."""

    attributes: Attributes | None = None
    tags: Tags | None = None


@dataclass(frozen=True)
class ItemText:
    """Free-text fields per item (e.g. ``{"title": (...)}``), aligned with the item vocabulary;
    ``""`` where an item has no text for a field."""

    fields: Mapping[str, tuple[str, ...]]

    def __post_init__(self) -> None:
        _check_lengths("item_text", **dict(self.fields))
        frozen = {name: tuple(str(t) for t in texts) for name, texts in self.fields.items()}
        object.__setattr__(self, "fields", MappingProxyType(frozen))


@dataclass(frozen=True)
class Social:
    """User–user edges. Undirected graphs store each edge once; use :meth:`both_directions`."""

    source: np.ndarray
    target: np.ndarray
    directed: bool = False
    weight: np.ndarray | None = None

    def __post_init__(self) -> None:
        _check_lengths("social", source=self.source, target=self.target, weight=self.weight)
        object.__setattr__(self, "source", _frozen_array(self.source, np.int64))
        object.__setattr__(self, "target", _frozen_array(self.target, np.int64))
        object.__setattr__(self, "weight", _optional_array(self.weight, np.float32))

    def __len__(self) -> int:
        return len(self.source)

    def both_directions(self) -> tuple[np.ndarray, np.ndarray]:
        if self.directed:
            return self.source, self.target
        return (np.concatenate([self.source, self.target]),
                np.concatenate([self.target, self.source]))


@dataclass(frozen=True)
class KnowledgeGraph:
    """Triples over entities plus the item → entity links that attach items to the graph."""

    head: np.ndarray
    relation: np.ndarray
    tail: np.ndarray
    entities: Vocabulary
    relations: Vocabulary
    link_item: np.ndarray
    link_entity: np.ndarray
    entity_names: tuple[str, ...] | None = None  # aligned with ``entities``; "" when unnamed

    def __post_init__(self) -> None:
        _check_lengths("kg", head=self.head, relation=self.relation, tail=self.tail)
        _check_lengths("kg links", item=self.link_item, entity=self.link_entity)
        for name in ("head", "relation", "tail", "link_item", "link_entity"):
            object.__setattr__(self, name, _frozen_array(getattr(self, name), np.int64))
        if self.entity_names is not None:
            if len(self.entity_names) != len(self.entities):
                raise ValueError("kg: entity_names must align with the entity vocabulary")
            object.__setattr__(self, "entity_names", tuple(self.entity_names))

    def __len__(self) -> int:
        return len(self.head)


@dataclass(frozen=True)
class Reviews:
    """Free-text reviews; each row pairs a user with an item, so protocols filter them."""

    user: np.ndarray
    item: np.ndarray
    text: tuple[str, ...]
    rating: np.ndarray | None = None
    timestamp: np.ndarray | None = None

    def __post_init__(self) -> None:
        _check_lengths("reviews", user=self.user, item=self.item, text=self.text,
                       rating=self.rating, timestamp=self.timestamp)
        object.__setattr__(self, "user", _frozen_array(self.user, np.int64))
        object.__setattr__(self, "item", _frozen_array(self.item, np.int64))
        object.__setattr__(self, "text", tuple(str(t) for t in self.text))
        object.__setattr__(self, "rating", _optional_array(self.rating, np.float32))
        object.__setattr__(self, "timestamp", _optional_array(self.timestamp, np.int64))

    def __len__(self) -> int:
        return len(self.user)

    def take(self, rows: np.ndarray) -> "Reviews":
        rows = np.asarray(rows)
        index = np.flatnonzero(rows) if rows.dtype == bool else rows
        pick = lambda col: None if col is None else col[index]  # noqa: E731
        return Reviews(self.user[index], self.item[index], tuple(self.text[i] for i in index),
                       pick(self.rating), pick(self.timestamp))


@dataclass(frozen=True)
class Dataset:
    """A multi-source dataset: vocabularies plus one typed table per available source."""

    name: str
    users: Vocabulary
    items: Vocabulary
    interactions: Interactions
    user_attributes: Attributes | None = None
    item_attributes: ItemAttributes | None = None
    item_text: ItemText | None = None
    social: Social | None = None
    kg: KnowledgeGraph | None = None
    reviews: Reviews | None = None

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def sources(self) -> tuple[str, ...]:
        """Canonical names of the sources this dataset has, in canonical order."""
        return tuple(name for name in SOURCE_NAMES if getattr(self, name) is not None)

    def replace(self, **changes) -> "Dataset":
        return dataclasses.replace(self, **changes)

    def without(self, *sources: str) -> "Dataset":
        """The same dataset with the named side sources switched off (for ablations)."""
        unknown = set(sources) - set(SOURCE_NAMES)
        if unknown:
            raise ValueError(f"unknown source names {sorted(unknown)}; known: {SOURCE_NAMES}")
        if "interactions" in sources:
            raise ValueError("interactions cannot be switched off")
        return self.replace(**{name: None for name in sources})
