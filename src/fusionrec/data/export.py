"""``write_dataset``: any :class:`Dataset` -> CSV files plus a ``spec.yaml`` that loads it back.

The spec pins the vocabularies with explicit id lists (``users.csv``, ``items.csv``, tag, entity
and relation lists), so :func:`~fusionrec.data.load.load_dataset` on the written ``spec.yaml``
rebuilds the same ids in the same order and the same tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fusionrec.data.schema import Attributes, Dataset
from fusionrec.data.spec import (AttributeSpec, AttributesSpec, DatasetSpec, InteractionsSpec,
                                 ItemTextSpec, KGSpec, LinksSpec, ReviewsSpec, SocialSpec,
                                 TableSpec, TagsSpec, TriplesSpec, VocabularyFileSpec,
                                 VocabularySpec)
from fusionrec.data.spec_yaml import write_spec


def _free(name: str, taken) -> str:
    """``name``, or ``name`` with leading underscores until it clashes with no column."""
    while name in taken:
        name = "_" + name
    return name


class _Writer:
    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    def csv(self, name: str, columns: dict) -> TableSpec:
        frame = pd.DataFrame({key: (list(value) if isinstance(value, tuple) else value)
                              for key, value in columns.items()})
        frame.to_csv(self.out_dir / name, index=False, lineterminator="\n", encoding="utf-8")
        return TableSpec(name, format="csv")

    def ids(self, name: str, column: str, ids, names=None) -> VocabularyFileSpec:
        columns = {column: list(ids)}
        roles = {"id": column}
        if names is not None:
            columns["name"] = list(names)
            roles["name"] = "name"
        return VocabularyFileSpec(self.csv(name, columns), roles)


def _attribute_specs(attributes: Attributes) -> tuple[AttributeSpec, ...]:
    specs = []
    for name, values in attributes.columns.items():
        numeric = np.asarray(values).dtype.kind in "biuf"
        specs.append(AttributeSpec(name, "numeric" if numeric else "categorical"))
    return tuple(specs)


def _entity_table(writer: _Writer, entity: str, vocab_ids, attributes: Attributes | None):
    """users.csv / items.csv: the vocabulary in order, plus attribute columns when present."""
    columns: dict = {}
    names = tuple(attributes.columns) if attributes is not None else ()
    id_col = _free(entity, names)
    columns[id_col] = list(vocab_ids)
    if attributes is not None:
        for name, values in attributes.columns.items():
            values = np.asarray(values)
            columns[name] = values if values.dtype.kind in "biuf" else [str(v) for v in values]
    table = writer.csv(f"{entity}s.csv", columns)
    vocab = VocabularyFileSpec(table, {"id": id_col})
    spec = None
    if attributes is not None and attributes.columns:
        spec = AttributesSpec(table, {entity: id_col}, _attribute_specs(attributes),
                              entity=entity)
    return vocab, spec


def write_dataset(dataset: Dataset, out_dir: str | Path) -> Path:
    """Write ``dataset`` as CSV files + ``spec.yaml`` into ``out_dir``; returns the spec path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    w = _Writer(out)
    users, items = dataset.users, dataset.items
    user_vocab, user_attrs = _entity_table(w, "user", users.ids, dataset.user_attributes)
    item_attrs_src = dataset.item_attributes
    item_vocab, item_attrs = _entity_table(
        w, "item", items.ids, item_attrs_src.attributes if item_attrs_src is not None else None)

    inter = dataset.interactions
    columns = {"user": users.raw(inter.user), "item": items.raw(inter.item)}
    roles = {"user": "user", "item": "item"}
    for role in ("rating", "weight", "timestamp"):
        if getattr(inter, role) is not None:
            columns[role] = getattr(inter, role)
            roles[role] = role
    spec_kw: dict = {"interactions": InteractionsSpec(w.csv("interactions.csv", columns), roles,
                                                      duplicates="keep")}
    if user_attrs is not None:
        spec_kw["user_attributes"] = user_attrs

    tags_spec = None
    if item_attrs_src is not None and item_attrs_src.tags is not None:
        tags = item_attrs_src.tags
        columns = {"item": items.raw(tags.item), "tag": tags.vocabulary.raw(tags.tag)}
        if tags.user is not None:
            columns["user"] = [users.ids[u] if u >= 0 else "" for u in tags.user]
        for role in ("weight", "timestamp"):
            if getattr(tags, role) is not None:
                columns[role] = getattr(tags, role)
        tags_spec = TagsSpec(w.csv("tags.csv", columns), {k: k for k in columns},
                             vocabulary=w.ids("tag_vocabulary.csv", "tag", tags.vocabulary.ids),
                             duplicates="keep")
    if item_attrs is not None or tags_spec is not None:
        base = item_attrs or AttributesSpec(entity="item", tags=tags_spec)
        spec_kw["item_attributes"] = AttributesSpec(base.table, base.columns, base.attributes,
                                                    tags_spec, entity="item")

    if dataset.item_text is not None:
        fields = dict(dataset.item_text.fields)
        id_col = _free("item", fields)
        table = w.csv("item_text.csv", {id_col: list(items.ids), **fields})
        spec_kw["item_text"] = ItemTextSpec(table, {"item": id_col}, {k: k for k in fields})

    if dataset.social is not None:
        social = dataset.social
        columns = {"source": users.raw(social.source), "target": users.raw(social.target)}
        if social.weight is not None:
            columns["weight"] = social.weight
        spec_kw["social"] = SocialSpec(w.csv("social.csv", columns), {k: k for k in columns},
                                       directed=social.directed, self_loops="keep",
                                       duplicates="keep")

    if dataset.kg is not None:
        kg = dataset.kg
        ents, rels = kg.entities, kg.relations
        triples = w.csv("kg_triples.csv", {"head": ents.raw(kg.head),
                                           "relation": rels.raw(kg.relation),
                                           "tail": ents.raw(kg.tail)})
        links = w.csv("kg_links.csv", {"item": items.raw(kg.link_item),
                                       "entity": ents.raw(kg.link_entity)})
        spec_kw["kg"] = KGSpec(
            TriplesSpec(triples, {"head": "head", "relation": "relation", "tail": "tail"},
                        duplicates="keep"),
            LinksSpec(links, {"item": "item", "entity": "entity"}, duplicates="keep"),
            entities=w.ids("kg_entities.csv", "entity", ents.ids, kg.entity_names),
            relations=w.ids("kg_relations.csv", "relation", rels.ids))

    if dataset.reviews is not None:
        rev = dataset.reviews
        columns = {"user": users.raw(rev.user), "item": items.raw(rev.item), "text": rev.text}
        for role in ("rating", "timestamp"):
            if getattr(rev, role) is not None:
                columns[role] = getattr(rev, role)
        spec_kw["reviews"] = ReviewsSpec(w.csv("reviews.csv", columns), {k: k for k in columns},
                                         empty_text="keep", duplicates="keep")

    spec = DatasetSpec(dataset.name, **spec_kw, root=".",
                       vocabulary=VocabularySpec((), (), user_vocab, item_vocab),
                       description="written by fusionrec.data.export.write_dataset")
    return write_spec(spec, out / "spec.yaml")
