"""The YAML *source spec*: which files hold which canonical source, how to read them, which column
plays which role, and what to do with bad rows. Bringing new data needs a spec file, no code.

Frozen dataclasses, validated in ``__post_init__`` (``ValueError`` naming the bad key); YAML
parsing and dumping live in :mod:`fusionrec.data.spec_yaml`. A source section mixes *file keys*
(``file, format, compression, sep, encoding, header, names, quoting, optional``, gathered into a
:class:`TableSpec`) with ``columns`` (role -> column name) and the source's own options.

``duplicates: dedupe`` keeps the first row of each repeated key in file order (the lowest line
that survived the other checks: a row dropped as bad does not count) and drops the rest; it
does not look at timestamps or ratings. Sort the file first to keep, say, the latest rating.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, Mapping

from fusionrec.data.schema import SOURCE_NAMES
from fusionrec.data.spec_base import (ATTRIBUTE_KINDS, BAD_ROWS, DUPLICATES, EMPTY_TEXT,  # noqa: F401
                                      FORMATS, KEYED_DUPLICATES, QUOTING, UNKNOWN_IDS,
                                      AttributeSpec, Roles, TableSpec, VocabularyFileSpec, choice)

#: Source sections of a spec, in canonical order (the schema's source names).
SOURCE_KEYS = SOURCE_NAMES


@dataclass(frozen=True)
class InteractionsSpec(Roles):
    table: TableSpec
    columns: Mapping[str, str]
    timestamp_format: str = "unix"   # "unix" seconds | "unix_ms" | a strptime format
    duplicates: str = "error"        # error | dedupe (keeps the first line of a pair) | keep
    unknown_ids: str = "error"       # ids outside an explicit vocabulary list
    bad_rows: str = "error"          # missing ids, unparsable numbers, lines with too few fields
    REQUIRED: ClassVar = ("user", "item")
    OPTIONAL: ClassVar = ("rating", "weight", "timestamp")
    MULTI: ClassVar = ("timestamp",)  # [year, month, day] columns
    KIND: ClassVar = "interactions"


@dataclass(frozen=True)
class AttributesSpec(Roles):
    """User attributes (role ``user``) or item attributes (role ``item``) with optional tags."""

    table: TableSpec | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    attributes: tuple[AttributeSpec, ...] = ()
    tags: "TagsSpec | None" = None
    duplicates: str = "error"
    unknown_ids: str = "error"
    bad_rows: str = "error"
    entity: str = "item"             # "user" or "item": which vocabulary rows align with
    REQUIRED: ClassVar = ()
    OPTIONAL: ClassVar = ("user", "item")
    KIND: ClassVar = "attributes"
    KEYED: ClassVar = True

    def __post_init__(self) -> None:
        choice("attributes entity", self.entity, ("user", "item"))
        self._validate()
        if self.table is not None:
            if self.entity not in self.columns:
                raise ValueError(f"{self.entity}_attributes columns: missing role {self.entity!r}")
            if not self.attributes:
                raise ValueError(f"{self.entity}_attributes: list at least one attribute")
        elif self.tags is None:
            raise ValueError(f"{self.entity}_attributes: give a file with attributes, or tags")
        if self.tags is not None and self.entity != "item":
            raise ValueError("user_attributes: tags are item tags; put them under item_attributes")
        object.__setattr__(self, "attributes", tuple(self.attributes))
        names = [a.name for a in self.attributes]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.entity}_attributes: attribute names repeat: {names}")


@dataclass(frozen=True)
class TagsSpec(Roles):
    """Tag assignments on items; ``user`` (the tagging user) is optional, ``vocabulary`` maps
    tag ids to tag names (the names become the tag vocabulary)."""

    table: TableSpec
    columns: Mapping[str, str]
    vocabulary: VocabularyFileSpec | None = None
    timestamp_format: str = "unix"
    duplicates: str = "error"
    unknown_ids: str = "error"
    bad_rows: str = "error"
    REQUIRED: ClassVar = ("item", "tag")
    OPTIONAL: ClassVar = ("user", "weight", "timestamp")
    MULTI: ClassVar = ("timestamp",)
    KIND: ClassVar = "tags"


@dataclass(frozen=True)
class ItemTextSpec(Roles):
    table: TableSpec
    columns: Mapping[str, str]
    fields: Mapping[str, str] = field(default_factory=dict)  # text field name -> column
    duplicates: str = "error"
    unknown_ids: str = "error"
    bad_rows: str = "error"
    REQUIRED: ClassVar = ("item",)
    KIND: ClassVar = "item_text"
    KEYED: ClassVar = True

    def __post_init__(self) -> None:
        self._validate()
        fields = self.fields
        if isinstance(fields, (list, tuple)):
            fields = {str(c): str(c) for c in fields}
        if not fields:
            raise ValueError("item_text: list the text fields, e.g. fields: [title]")
        object.__setattr__(self, "fields", MappingProxyType({str(k): str(v)
                                                             for k, v in fields.items()}))


@dataclass(frozen=True)
class SocialSpec(Roles):
    """User-user edges. Undirected edges are stored once: a reverse of a kept edge is dropped
    (counted under its own reason)."""

    table: TableSpec
    columns: Mapping[str, str]
    directed: bool = False
    self_loops: str = "drop"
    duplicates: str = "error"
    unknown_ids: str = "error"
    bad_rows: str = "error"
    REQUIRED: ClassVar = ("source", "target")
    OPTIONAL: ClassVar = ("weight",)
    KIND: ClassVar = "social"

    def __post_init__(self) -> None:
        self._validate()
        if not isinstance(self.directed, bool):
            raise ValueError(f"social directed: must be true or false, got {self.directed!r}")


@dataclass(frozen=True)
class TriplesSpec(Roles):
    table: TableSpec
    columns: Mapping[str, str]
    duplicates: str = "error"
    bad_rows: str = "error"
    REQUIRED: ClassVar = ("head", "relation", "tail")
    KIND: ClassVar = "kg triples"


@dataclass(frozen=True)
class LinksSpec(Roles):
    table: TableSpec
    columns: Mapping[str, str]
    duplicates: str = "error"
    unknown_ids: str = "error"
    bad_rows: str = "error"
    REQUIRED: ClassVar = ("item", "entity")
    KIND: ClassVar = "kg links"


@dataclass(frozen=True)
class KGSpec:
    """Triples plus item -> entity links. ``restrict_items`` keeps only interactions with items
    linked to the KG (a counted drop). ``entity_names_from_item_text`` names each linked entity
    after its item's text field of that name."""

    triples: TriplesSpec
    links: LinksSpec
    entities: VocabularyFileSpec | None = None
    relations: VocabularyFileSpec | None = None
    entity_names_from_item_text: str | None = None
    restrict_items: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.restrict_items, bool):
            raise ValueError("kg restrict_items: must be true or false")


@dataclass(frozen=True)
class ReviewsSpec(Roles):
    """Free-text reviews. ``text`` may name several columns, joined by ``text_separator``
    (empty parts skipped); ``empty_text`` decides what happens to rows with an empty text column."""

    table: TableSpec
    columns: Mapping[str, str]
    text_separator: str = "\n"
    empty_text: str = "error"
    timestamp_format: str = "unix"
    duplicates: str = "error"
    unknown_ids: str = "error"
    bad_rows: str = "error"
    REQUIRED: ClassVar = ("user", "item", "text")
    OPTIONAL: ClassVar = ("rating", "timestamp")
    MULTI: ClassVar = ("text", "timestamp")
    KIND: ClassVar = "reviews"


USER_SOURCES = ("interactions", "user_attributes", "social", "reviews")
ITEM_SOURCES = ("interactions", "item_attributes", "item_text", "reviews", "kg")


@dataclass(frozen=True)
class VocabularySpec:
    """How the user and item vocabularies are built: ids from an explicit list first (if given),
    then the ids of the ``*_from`` sources in their first-seen order. Ids met elsewhere are
    *unknown* and handled by each source's ``unknown_ids`` policy."""

    users_from: tuple[str, ...] = ("interactions",)
    items_from: tuple[str, ...] = ("interactions",)
    users: VocabularyFileSpec | None = None
    items: VocabularyFileSpec | None = None

    def __post_init__(self) -> None:
        for key, allowed in (("users_from", USER_SOURCES), ("items_from", ITEM_SOURCES)):
            values = tuple(getattr(self, key))
            for value in values:
                choice(f"vocabulary {key}", value, allowed)
            object.__setattr__(self, key, values)


@dataclass(frozen=True)
class DatasetSpec:
    """A whole dataset: one spec per canonical source (``interactions`` required)."""

    name: str
    interactions: InteractionsSpec
    user_attributes: AttributesSpec | None = None
    item_attributes: AttributesSpec | None = None
    item_text: ItemTextSpec | None = None
    social: SocialSpec | None = None
    kg: KGSpec | None = None
    reviews: ReviewsSpec | None = None
    vocabulary: VocabularySpec = field(default_factory=VocabularySpec)
    root: str | None = None  # data root relative to the spec file; overrides --data-dir
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("name: give the dataset a non-empty name")
        for key, entity in (("user_attributes", "user"), ("item_attributes", "item")):
            spec = getattr(self, key)
            if spec is not None and spec.entity != entity:
                raise ValueError(f"{key}: entity must be {entity!r}")
        field_name = self.kg.entity_names_from_item_text if self.kg is not None else None
        if field_name and (self.item_text is None or field_name not in self.item_text.fields):
            raise ValueError(f"kg entity_names_from_item_text: {field_name!r} is not a field of "
                             "this spec's item_text")
        for key in ("users_from", "items_from"):
            for source in getattr(self.vocabulary, key):
                if getattr(self, source) is None:
                    raise ValueError(f"vocabulary {key}: source {source!r} is not in this spec")
