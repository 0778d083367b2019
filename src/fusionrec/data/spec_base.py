"""Building blocks of the source spec: how to read one file (:class:`TableSpec`), which column
plays which role (``columns``, checked by :class:`Roles`), explicit id lists and attributes.

Frozen dataclasses validated in ``__post_init__``; a bad value raises ``ValueError`` naming the key.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar, Mapping

FORMATS = ("csv", "tsv", "parquet", "jsonl")
QUOTING = ("minimal", "none", "all")
#: ``duplicates``: what to do with rows whose key (the (user, item) pair, the id, the edge ...)
#: repeats. ``error`` names both lines; ``dedupe`` keeps the FIRST row in file order among the
#: rows still kept after the other checks (the lowest line number, whatever its timestamp or
#: rating) and drops the later ones, counted in the report; ``keep`` keeps every row, counted.
DUPLICATES = ("error", "dedupe", "keep")
KEYED_DUPLICATES = ("error", "dedupe")  # a per-id table cannot hold two rows for one id
UNKNOWN_IDS = ("error", "drop")
BAD_ROWS = ("error", "drop")
EMPTY_TEXT = ("error", "drop", "keep")
ATTRIBUTE_KINDS = ("categorical", "numeric", "multi", "flags", "year")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet",
               ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


def choice(where: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ValueError(f"{where}: {value!r} is not one of {', '.join(options)}")


@dataclass(frozen=True)
class TableSpec:
    """One file and how to parse it. ``file`` is relative to the data root (or absolute)."""

    file: str
    format: str | None = None       # auto from the extension (``.gz`` stripped)
    compression: str | None = None  # "gzip" | "none"; auto: gzip when the name ends in .gz
    sep: str | None = None          # one character; "," for csv, tab for tsv
    encoding: str = "utf-8"
    header: bool = True
    names: tuple[str, ...] | None = None  # column names; required when header is false
    quoting: str = "minimal"
    optional: bool = False          # a missing optional file skips its source, noted in the report

    def __post_init__(self) -> None:
        where = f"file {self.file!r}"
        if not isinstance(self.file, str) or not self.file:
            raise ValueError("file: must be a non-empty path")
        base = self.file[:-3] if self.file.lower().endswith(".gz") else self.file
        if self.compression in (None, ""):
            object.__setattr__(self, "compression", "gzip" if base != self.file else "none")
        choice(f"{where} compression", self.compression, ("gzip", "none"))
        if self.format is None:
            ext = "." + base.rsplit(".", 1)[-1].lower() if "." in base else ""
            if ext not in _EXTENSIONS:
                raise ValueError(f"{where}: cannot tell the format from the extension "
                                 f"{ext or '(none)'}; set format: {'|'.join(FORMATS)}")
            object.__setattr__(self, "format", _EXTENSIONS[ext])
        choice(f"{where} format", self.format, FORMATS)
        if self.sep is None and self.format in ("csv", "tsv"):
            object.__setattr__(self, "sep", "," if self.format == "csv" else "\t")
        if self.sep is not None and len(self.sep) != 1:
            raise ValueError(f"{where}: sep must be one character, got {self.sep!r}")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ValueError(f"{where}: unknown encoding {self.encoding!r}") from None
        choice(f"{where} quoting", self.quoting, QUOTING)
        if self.names is not None:
            names = tuple(str(n) for n in self.names)
            if len(set(names)) != len(names):
                raise ValueError(f"{where}: names repeat a column: {list(names)}")
            object.__setattr__(self, "names", names)
        if not self.header and self.names is None and self.format in ("csv", "tsv"):
            raise ValueError(f"{where}: header is false, so give the column names as names: [...]")


class Roles:
    """Shared validation of ``columns`` (role -> column name, or a list for MULTI roles)."""

    REQUIRED: ClassVar[tuple[str, ...]] = ()
    OPTIONAL: ClassVar[tuple[str, ...]] = ()
    MULTI: ClassVar[tuple[str, ...]] = ()  # roles that may name several columns
    KIND: ClassVar[str] = "source"
    KEYED: ClassVar[bool] = False  # one row per id: duplicates may not be "keep"

    def _check_roles(self) -> None:
        where = f"{self.KIND} columns"
        columns = dict(self.columns or {})
        missing = [r for r in self.REQUIRED if r not in columns]
        if missing:
            raise ValueError(f"{where}: missing role(s) {missing}; roles are "
                             f"{list(self.REQUIRED + self.OPTIONAL)}")
        unknown = [r for r in columns if r not in self.REQUIRED + self.OPTIONAL]
        if unknown:
            raise ValueError(f"{where}: unknown role(s) {unknown}; roles are "
                             f"{list(self.REQUIRED + self.OPTIONAL)}")
        for role, col in list(columns.items()):
            if isinstance(col, (list, tuple)) and role in self.MULTI and col:
                columns[role] = tuple(str(c) for c in col)
            elif isinstance(col, (str, int)) and str(col):
                columns[role] = str(col)
            else:
                raise ValueError(f"{where}: role {role!r} needs a column name, got {col!r}")
        object.__setattr__(self, "columns", MappingProxyType(columns))

    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        """Roles plus every policy field the spec has (``duplicates``, ``unknown_ids``, ...)."""
        self._check_roles()
        policies = {"duplicates": KEYED_DUPLICATES if self.KEYED else DUPLICATES,
                    "unknown_ids": UNKNOWN_IDS, "bad_rows": BAD_ROWS, "empty_text": EMPTY_TEXT,
                    "self_loops": ("drop", "keep")}
        for name, options in policies.items():
            if hasattr(self, name):
                choice(f"{self.KIND} {name}", getattr(self, name), options)


@dataclass(frozen=True)
class VocabularyFileSpec(Roles):
    """A list of ids in a fixed order (users, items, tags, KG entities or relations), optionally
    with a display name per id."""

    table: TableSpec
    columns: Mapping[str, str]
    REQUIRED: ClassVar = ("id",)
    OPTIONAL: ClassVar = ("name",)
    KIND: ClassVar = "vocabulary"


@dataclass(frozen=True)
class AttributeSpec:
    """One attribute. Kinds: ``categorical`` (string), ``numeric`` (float), ``multi`` (a list of
    categories in one cell split by ``separator``), ``flags`` (one 0/1 column per category,
    ``columns``), ``year`` (the year of a date cell, numeric)."""

    name: str
    kind: str = "categorical"
    column: str | None = None        # defaults to ``name``
    columns: tuple[str, ...] | None = None  # for ``flags``
    separator: str = "|"             # for ``multi``: the separator used in the file
    format: str | None = None        # for ``year``: strptime format; None = let pandas guess

    def __post_init__(self) -> None:
        choice(f"attribute {self.name!r} kind", self.kind, ATTRIBUTE_KINDS)
        if self.kind == "flags":
            if not self.columns:
                raise ValueError(f"attribute {self.name!r}: kind flags needs columns: [...]")
            object.__setattr__(self, "columns", tuple(str(c) for c in self.columns))
        elif self.columns is not None:
            raise ValueError(f"attribute {self.name!r}: columns is only for kind flags")
        if self.column is None and self.kind != "flags":
            object.__setattr__(self, "column", self.name)
        if self.kind == "multi" and not self.separator:
            raise ValueError(f"attribute {self.name!r}: separator must not be empty")

    @property
    def source_columns(self) -> tuple[str, ...]:
        return self.columns if self.kind == "flags" else (self.column,)
