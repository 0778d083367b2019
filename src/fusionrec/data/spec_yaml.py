"""Reading and writing :class:`~fusionrec.data.spec.DatasetSpec` as YAML.

Layout::

    name: lastfm
    root: null                       # optional: data root relative to this file
    vocabulary: {users_from: [interactions], items_from: [interactions, item_text]}
    sources:
      interactions:
        file: lastfm-hetrec2011/user_artists.dat   # + format/sep/encoding/header/... keys
        columns: {user: userID, item: artistID, weight: weight}
        duplicates: error
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any, Callable, Mapping

from fusionrec.data.errors import DataError
from fusionrec.data.spec import (SOURCE_KEYS, AttributeSpec, AttributesSpec, DatasetSpec,
                                 InteractionsSpec, ItemTextSpec, KGSpec, LinksSpec, ReviewsSpec,
                                 SocialSpec, TableSpec, TagsSpec, TriplesSpec, VocabularyFileSpec,
                                 VocabularySpec)

TABLE_KEYS = tuple(f.name for f in dataclasses.fields(TableSpec))


def _unknown(where: str, key: str, allowed) -> ValueError:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(allowed)}"
    return ValueError(f"{where}: unknown key {key!r}{hint}")


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return value


def _build(cls, data: Any, where: str, nested: Mapping[str, Callable] | None = None, **fixed):
    """``cls(**data)`` with file keys gathered into ``table`` and nested specs parsed."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping of keys, got {type(data).__name__}")
    data = dict(data)
    names = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in fixed]
    kwargs: dict[str, Any] = dict(fixed)
    if "table" in names:
        table = {k: _plain(data.pop(k)) for k in list(data) if k in TABLE_KEYS}
        if table and "file" not in table:
            raise ValueError(f"{where}: file keys given without file:")
        if not table and cls is not AttributesSpec:
            raise ValueError(f"{where}: missing file: (the path of the file to read)")
        try:
            kwargs["table"] = TableSpec(**table) if table else None
        except TypeError as error:
            raise ValueError(f"{where}: {error}") from None
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
    allowed = [n for n in names if n != "table"] + (list(TABLE_KEYS) if "table" in names else [])
    for key, value in data.items():
        if key not in names or key == "table":
            raise _unknown(where, key, allowed)
        parse = (nested or {}).get(key)
        kwargs[key] = parse(value, f"{where}.{key}") if parse and value is not None else (
            dict(value) if isinstance(value, Mapping) else _plain(value))
    try:
        return cls(**kwargs)
    except TypeError as error:  # a required key is missing
        raise ValueError(f"{where}: {error}") from None
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _vocab_file(data, where):
    return _build(VocabularyFileSpec, data, where)


def _attribute(data, where):
    if isinstance(data, str):
        return AttributeSpec(name=data)
    return _build(AttributeSpec, data, where)


def _attributes(data, where):
    if not isinstance(data, (list, tuple)):
        raise ValueError(f"{where}: expected a list of attributes")
    return tuple(_attribute(item, f"{where}[{i}]") for i, item in enumerate(data))


def _tags(data, where):
    return _build(TagsSpec, data, where, {"vocabulary": _vocab_file})


def _attr_parser(entity: str):
    def parse(data, where):
        return _build(AttributesSpec, data, where, {"attributes": _attributes, "tags": _tags},
                      entity=entity)
    return parse


def _kg(data, where):
    return _build(KGSpec, data, where, {
        "triples": lambda d, w: _build(TriplesSpec, d, w),
        "links": lambda d, w: _build(LinksSpec, d, w),
        "entities": _vocab_file, "relations": _vocab_file})


_SOURCE_PARSERS: dict[str, Callable] = {
    "interactions": lambda d, w: _build(InteractionsSpec, d, w),
    "user_attributes": _attr_parser("user"),
    "item_attributes": _attr_parser("item"),
    "item_text": lambda d, w: _build(ItemTextSpec, d, w),
    "social": lambda d, w: _build(SocialSpec, d, w),
    "kg": _kg,
    "reviews": lambda d, w: _build(ReviewsSpec, d, w),
}
assert tuple(_SOURCE_PARSERS) == SOURCE_KEYS


def spec_from_dict(data: Mapping) -> DatasetSpec:
    """Build a spec from parsed YAML; ``ValueError`` names the offending key path."""
    if not isinstance(data, Mapping):
        raise ValueError("a dataset spec must be a mapping with name: and sources:")
    data = dict(data)
    sources = data.pop("sources", None)
    if not isinstance(sources, Mapping) or "interactions" not in sources:
        raise ValueError("sources: must be a mapping with at least interactions:")
    kwargs: dict[str, Any] = {}
    for key, value in sources.items():
        if key not in _SOURCE_PARSERS:
            raise _unknown("sources", key, SOURCE_KEYS)
        if value is not None:
            kwargs[key] = _SOURCE_PARSERS[key](value, f"sources.{key}")
    for key, value in data.items():
        if key == "vocabulary":
            kwargs[key] = _build(VocabularySpec, value or {}, "vocabulary",
                                 {"users": _vocab_file, "items": _vocab_file})
        elif key in ("name", "root", "description"):
            kwargs[key] = value
        else:
            raise _unknown("spec", key, ("name", "description", "root", "vocabulary", "sources"))
    if "name" not in kwargs:
        raise ValueError("name: missing; give the dataset a name")
    return DatasetSpec(**kwargs)


def read_spec(path: str | Path) -> DatasetSpec:
    """Parse a spec file; any problem is a one-line :class:`DataError` naming the file."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DataError(str(path), None, None, f"cannot read the spec: {error.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise DataError(str(path), line, None,
                        f"is not valid YAML ({getattr(error, 'problem', error)})") from None
    try:
        return spec_from_dict(data)
    except ValueError as error:
        raise DataError(str(path), None, None, str(error)) from None


def _dump(obj: Any) -> Any:
    """Spec object -> plain YAML data, leaving out values equal to their defaults."""
    if dataclasses.is_dataclass(obj):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            if not f.init or f.name == "entity":
                continue
            value = getattr(obj, f.name)
            if f.name == "table":
                if value is not None:
                    out.update(_dump_table(value))
                continue
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else object())
            if isinstance(obj, AttributeSpec) and f.name == "column" and value == obj.name:
                continue  # the default column is the attribute's name
            forced = f.name in ("columns", "name", "directed") and value is not None
            if value != default or forced:
                out[f.name] = _dump(value)
        return out
    if isinstance(obj, Mapping):
        return {k: _dump(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return [_dump(v) for v in obj]
    return obj


def _dump_table(table: TableSpec) -> dict[str, Any]:
    gz = table.file.lower().endswith(".gz")
    defaults = {"compression": "gzip" if gz else "none", "encoding": "utf-8", "header": True,
                "names": None, "quoting": "minimal", "optional": False,
                "sep": {"csv": ",", "tsv": "\t"}.get(table.format)}
    out: dict[str, Any] = {"file": table.file, "format": table.format}
    for key, default in defaults.items():
        value = getattr(table, key)
        if value != default:
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def spec_to_dict(spec: DatasetSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": spec.name}
    if spec.description:
        out["description"] = spec.description
    if spec.root is not None:
        out["root"] = spec.root
    if spec.vocabulary != VocabularySpec():
        out["vocabulary"] = _dump(spec.vocabulary)
    out["sources"] = {key: _dump(getattr(spec, key)) for key in SOURCE_KEYS
                      if getattr(spec, key) is not None}
    return out


def write_spec(spec: DatasetSpec, path: str | Path) -> Path:
    import yaml

    path = Path(path)
    path.write_text(yaml.safe_dump(spec_to_dict(spec), sort_keys=False, allow_unicode=True),
                    encoding="utf-8")
    return path
