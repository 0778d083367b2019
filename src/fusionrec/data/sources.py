"""Per-source builders: checked rows of a file -> one typed table of :mod:`fusionrec.data.schema`.

Sources that can add ids to the vocabularies are read in two steps: ``read_*`` checks the rows and
returns raw ids (a :class:`Raw`); once the vocabularies exist, ``build_*`` maps ids to indices,
applies ``unknown_ids`` and aligns the values. The loader (:mod:`fusionrec.data.load`) is the
``ctx``: it reads and caches files (``ctx.rows``) and collects each file's report (``ctx.finish``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fusionrec.data.schema import (Attributes, Interactions, ItemText, KnowledgeGraph, Reviews,
                                   Social, Tags, Vocabulary)
from fusionrec.data.spec import (AttributeSpec, AttributesSpec, InteractionsSpec, ItemTextSpec,
                                 KGSpec, LinksSpec, ReviewsSpec, SocialSpec, TagsSpec,
                                 VocabularyFileSpec)
from fusionrec.data.validate import Rows, id_strings, texts


@dataclass
class Raw:
    """Checked rows of one file plus their raw (string) id columns, before vocabulary mapping."""

    rows: Rows
    cols: dict[str, Any]

    def kept(self, key: str) -> np.ndarray:
        return self.rows.kept(self.cols[key])


def _align(n: int, index: np.ndarray, values, fill, dtype) -> np.ndarray:
    out = np.full(n, fill, dtype=dtype)
    out[index] = values
    return out


def interleave(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``a0, b0, a1, b1, ...``: first-seen order over two id columns of one table."""
    out = np.empty(2 * len(first), dtype=object)
    out[0::2], out[1::2] = first, second
    return out


# -- interactions ------------------------------------------------------------------------------
def read_interactions(ctx, spec: InteractionsSpec) -> Raw:
    rows = ctx.rows(spec.table, "interactions", spec.bad_rows)
    col = spec.columns
    cols: dict[str, Any] = {"user": rows.ids(col["user"]), "item": rows.ids(col["item"])}
    for role in ("rating", "weight"):
        cols[role] = rows.numbers(col[role]) if role in col else None
    cols["timestamp"] = (rows.timestamps(col["timestamp"], spec.timestamp_format)
                         if "timestamp" in col else None)
    rows.duplicates({col["user"]: cols["user"], col["item"]: cols["item"]}, spec.duplicates,
                    "(user, item) pair")
    return Raw(rows, cols)


def build_interactions(ctx, spec: InteractionsSpec, raw: Raw, users: Vocabulary,
                       items: Vocabulary) -> Interactions:
    rows = raw.rows
    user = rows.known(users, raw.cols["user"], spec.unknown_ids, spec.columns["user"], "user")
    item = rows.known(items, raw.cols["item"], spec.unknown_ids, spec.columns["item"], "item")
    ctx.finish(rows)
    opt = lambda key: None if raw.cols[key] is None else rows.kept(raw.cols[key])  # noqa: E731
    return Interactions(rows.kept(user), rows.kept(item), opt("rating"), opt("weight"),
                        opt("timestamp"))


# -- keyed tables: attributes, item text, vocabulary lists -------------------------------------
def read_keyed(ctx, spec: AttributesSpec | ItemTextSpec, source: str, role: str) -> Raw:
    rows = ctx.rows(spec.table, source, spec.bad_rows)
    ids = rows.ids(spec.columns[role])
    rows.duplicates({spec.columns[role]: ids}, spec.duplicates, f"{role} id")
    return Raw(rows, {"id": ids})


def _attribute(rows: Rows, attr: AttributeSpec) -> np.ndarray:
    if attr.kind == "numeric":
        return rows.numbers(attr.column, required=False)
    if attr.kind == "flags":
        on = np.column_stack([rows.numbers(c, required=False) > 0 for c in attr.columns])
        names = np.asarray(attr.columns, dtype=object)
        return np.array(["|".join(names[flags]) for flags in on], dtype=object)
    text = texts(rows.series(attr.column))
    if attr.kind == "multi":
        sep = attr.separator
        return np.array(["|".join(p.strip() for p in t.split(sep) if p.strip()) for t in text],
                        dtype=object)
    if attr.kind == "year":
        empty = np.array([not t.strip() for t in text], dtype=bool)
        dates = pd.to_datetime(pd.Series(text, dtype=object).where(~empty, None),
                               format=attr.format, errors="coerce")
        bad = dates.isna().to_numpy() & ~empty
        rows.reject(bad, rows.bad_rows, f"{attr.column} is not a date", attr.column,
                    lambda row: f"is not a date ({text[row]!r})", "fix it or set bad_rows: drop")
        return dates.dt.year.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.array(text, dtype=object)


def build_attributes(ctx, spec: AttributesSpec, raw: Raw, vocabulary: Vocabulary) -> Attributes:
    rows, entity = raw.rows, spec.entity
    index = rows.known(vocabulary, raw.cols["id"], spec.unknown_ids, spec.columns[entity], entity)
    values = {attr.name: _attribute(rows, attr) for attr in spec.attributes}
    ctx.finish(rows)
    keep, n = rows.keep, len(vocabulary)
    columns = {}
    for attr in spec.attributes:
        numeric = attr.kind in ("numeric", "year")
        columns[attr.name] = _align(n, index[keep], values[attr.name][keep],
                                    np.nan if numeric else "", np.float64 if numeric else object)
    return Attributes(columns)


def build_item_text(ctx, spec: ItemTextSpec, raw: Raw, items: Vocabulary) -> ItemText:
    rows = raw.rows
    index = rows.known(items, raw.cols["id"], spec.unknown_ids, spec.columns["item"], "item")
    values = {name: np.array(texts(rows.series(col)), dtype=object)
              for name, col in spec.fields.items()}
    ctx.finish(rows)
    keep = rows.keep
    return ItemText({name: tuple(_align(len(items), index[keep], v[keep], "", object))
                     for name, v in values.items()})


def read_vocabulary_file(ctx, spec: VocabularyFileSpec, source: str):
    """``(ids, names or None)`` of an explicit id list, in file order."""
    rows = ctx.rows(spec.table, source)
    ids = rows.ids(spec.columns["id"])
    rows.duplicates({spec.columns["id"]: ids}, "error", "id")
    names = (np.array(texts(rows.series(spec.columns["name"])), dtype=object)
             if "name" in spec.columns else None)
    ctx.finish(rows)
    return rows.kept(ids), None if names is None else rows.kept(names)


# -- item tags ---------------------------------------------------------------------------------
def build_tags(ctx, spec: TagsSpec, users: Vocabulary, items: Vocabulary) -> Tags:
    rows = ctx.rows(spec.table, "item_attributes.tags", spec.bad_rows)
    col = spec.columns
    item_ids, tag_ids = rows.ids(col["item"]), rows.ids(col["tag"])
    weight = rows.numbers(col["weight"]) if "weight" in col else None
    stamp = (rows.timestamps(col["timestamp"], spec.timestamp_format)
             if "timestamp" in col else None)
    keys = {col["item"]: item_ids, col["tag"]: tag_ids}
    user = None
    if "user" in col:  # a missing tagging user is allowed: stored as -1
        user_ids, no_user = id_strings(rows.series(col["user"]))
        user = np.where(no_user, -1, users.indices(user_ids))
        rows.reject((user < 0) & ~no_user, spec.unknown_ids, "unknown user", col["user"],
                    lambda row: f"refers to unknown user {user_ids[row]!r}",
                    "set unknown_ids: drop to skip such rows")
        keys = {col["user"]: user_ids, **keys}
    item = rows.known(items, item_ids, spec.unknown_ids, col["item"], "item")
    if spec.vocabulary is not None:
        ids, names = read_vocabulary_file(ctx, spec.vocabulary, "item_attributes.tags.vocabulary")
        vocabulary = Vocabulary(tuple(names if names is not None else ids))
        tag = rows.known(Vocabulary(tuple(ids)), tag_ids, spec.unknown_ids, col["tag"], "tag")
    else:
        vocabulary = Vocabulary.from_values(rows.kept(tag_ids))
        tag = vocabulary.indices(tag_ids)
    rows.duplicates(keys, spec.duplicates, "tag assignment")
    ctx.finish(rows)
    opt = lambda a: None if a is None else rows.kept(a)  # noqa: E731
    return Tags(rows.kept(item), rows.kept(tag), vocabulary, opt(user), opt(weight), opt(stamp))


# -- social ------------------------------------------------------------------------------------
def read_social(ctx, spec: SocialSpec) -> Raw:
    rows = ctx.rows(spec.table, "social", spec.bad_rows)
    src_col, dst_col = spec.columns["source"], spec.columns["target"]
    source, target = rows.ids(src_col), rows.ids(dst_col)
    weight = rows.numbers(spec.columns["weight"]) if "weight" in spec.columns else None
    if spec.self_loops == "drop":
        rows.drop(source == target, "self-loop")
    rows.duplicates({src_col: source, dst_col: target}, spec.duplicates, "edge")
    if not spec.directed:  # store each undirected edge once: the later direction is dropped
        low = np.where(source < target, source, target)
        high = np.where(source < target, target, source)
        kept = np.flatnonzero(rows.keep)
        repeat = pd.DataFrame({"a": low[kept], "b": high[kept]}).duplicated().to_numpy()
        mask = np.zeros(len(rows), dtype=bool)
        mask[kept[repeat]] = True
        rows.drop(mask, "reverse of an undirected edge already kept")
    return Raw(rows, {"source": source, "target": target, "weight": weight})


def build_social(ctx, spec: SocialSpec, raw: Raw, users: Vocabulary) -> Social:
    rows = raw.rows
    source = rows.known(users, raw.cols["source"], spec.unknown_ids, spec.columns["source"], "user")
    target = rows.known(users, raw.cols["target"], spec.unknown_ids, spec.columns["target"], "user")
    ctx.finish(rows)
    weight = None if raw.cols["weight"] is None else rows.kept(raw.cols["weight"])
    return Social(rows.kept(source), rows.kept(target), spec.directed, weight)


# -- knowledge graph ---------------------------------------------------------------------------
def read_links(ctx, spec: LinksSpec) -> Raw:
    rows = ctx.rows(spec.table, "kg.links", spec.bad_rows)
    item, entity = rows.ids(spec.columns["item"]), rows.ids(spec.columns["entity"])
    rows.duplicates({spec.columns["item"]: item}, spec.duplicates, "linked item")
    return Raw(rows, {"item": item, "entity": entity})


def build_kg(ctx, spec: KGSpec, links: Raw, items: Vocabulary,
             item_text: ItemText | None) -> KnowledgeGraph:
    triples = spec.triples
    rows = ctx.rows(triples.table, "kg.triples", triples.bad_rows)
    head, relation, tail = (rows.ids(triples.columns[r]) for r in ("head", "relation", "tail"))
    rows.duplicates({triples.columns[r]: a for r, a in zip(("head", "relation", "tail"),
                                                         (head, relation, tail))},
                    triples.duplicates, "triple")
    link_item = links.rows.known(items, links.cols["item"], spec.links.unknown_ids,
                                 spec.links.columns["item"], "item")
    explicit_entities, explicit_names = ((), None)
    if spec.entities is not None:
        explicit_entities, explicit_names = read_vocabulary_file(ctx, spec.entities, "kg.entities")
    explicit_relations = (read_vocabulary_file(ctx, spec.relations, "kg.relations")[0]
                          if spec.relations is not None else ())
    entities = Vocabulary.from_values([*explicit_entities, *links.kept("entity"),
                                       *interleave(rows.kept(head), rows.kept(tail))])
    relations = Vocabulary.from_values([*explicit_relations, *rows.kept(relation)])
    link_entity = entities.indices(links.kept("entity"))
    names = None
    if explicit_names is not None:
        names = _align(len(entities), entities.indices(explicit_entities), explicit_names, "",
                       object)
    elif spec.entity_names_from_item_text and item_text is not None:  # None: its file failed
        titles = np.asarray(item_text.fields[spec.entity_names_from_item_text], dtype=object)
        names = _align(len(entities), link_entity, titles[links.rows.kept(link_item)], "", object)
    ctx.finish(rows)
    ctx.finish(links.rows)
    return KnowledgeGraph(entities.indices(rows.kept(head)), relations.indices(rows.kept(relation)),
                          entities.indices(rows.kept(tail)), entities, relations,
                          links.rows.kept(link_item), link_entity,
                          None if names is None else tuple(names))


# -- reviews -----------------------------------------------------------------------------------
def read_reviews(ctx, spec: ReviewsSpec) -> Raw:
    rows = ctx.rows(spec.table, "reviews", spec.bad_rows)
    col = spec.columns
    cols: dict[str, Any] = {"user": rows.ids(col["user"]), "item": rows.ids(col["item"])}
    text_cols = col["text"] if isinstance(col["text"], tuple) else (col["text"],)
    parts = [texts(rows.series(c)) for c in text_cols]
    for name, part in zip(text_cols, parts):
        empty = np.array([not t.strip() for t in part], dtype=bool)
        if spec.empty_text == "keep":
            rows.warn(empty, f"empty {name} (kept)")
        else:
            rows.reject(empty, spec.empty_text, f"empty {name}", name,
                        lambda row: "is empty", "set empty_text: keep or drop")
    joiner = spec.text_separator
    cols["text"] = tuple(joiner.join(p for p in row if p.strip()) for row in zip(*parts))
    cols["rating"] = rows.numbers(col["rating"]) if "rating" in col else None
    cols["timestamp"] = (rows.timestamps(col["timestamp"], spec.timestamp_format)
                         if "timestamp" in col else None)
    rows.duplicates({col["user"]: cols["user"], col["item"]: cols["item"]}, spec.duplicates,
                    "(user, item) review")
    return Raw(rows, cols)


def build_reviews(ctx, spec: ReviewsSpec, raw: Raw, users: Vocabulary,
                  items: Vocabulary) -> Reviews:
    rows = raw.rows
    user = rows.known(users, raw.cols["user"], spec.unknown_ids, spec.columns["user"], "user")
    item = rows.known(items, raw.cols["item"], spec.unknown_ids, spec.columns["item"], "item")
    ctx.finish(rows)
    opt = lambda key: None if raw.cols[key] is None else rows.kept(raw.cols[key])  # noqa: E731
    return Reviews(rows.kept(user), rows.kept(item), rows.kept(raw.cols["text"]), opt("rating"),
                   opt("timestamp"))
