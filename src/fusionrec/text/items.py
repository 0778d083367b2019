"""Item textualiser: name, other text fields, attributes, tags, KG facts and reviews -> prose.

Reads only a :class:`Dataset`; give it ``split.features`` so that held-out user–item pairs
(tag assignments, reviews) never reach a text. Pure: the same dataset and options always give
the same texts.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from fusionrec.data.schema import Dataset
from fusionrec.text.attributes import AttributeText
from fusionrec.text.budget import Section, compose
from fusionrec.text.common import clean, first_sentences, humanise, item_names, name_field
from fusionrec.text.history import rating_scale
from fusionrec.text.kg import KGText
from fusionrec.text.options import ITEM_TEXT_VERSION, TextOptions
from fusionrec.text.reviews import ReviewText
from fusionrec.text.scrub import scrub_pii
from fusionrec.text.tags import TagText

VERSION = ITEM_TEXT_VERSION


class ItemTextualiser:
    """Precomputes per-source indexes once; :meth:`text` renders one item."""

    version = VERSION

    def __init__(self, dataset: Dataset, options: TextOptions = TextOptions()) -> None:
        self.options = options
        self.names = item_names(dataset)
        n_items, n_users = dataset.n_items, dataset.n_users
        fields = dataset.item_text.fields if dataset.item_text is not None else {}
        self.extra_fields = {name: texts for name, texts in fields.items()
                             if name != name_field(fields)}
        attrs = dataset.item_attributes
        self.attributes = AttributeText(attrs.attributes if attrs else None,
                                        options.max_attribute_chars)
        self.tags = TagText(attrs.tags if attrs else None, n_items, n_users, options.max_tags)
        self.kg = KGText(dataset.kg, self.names, options.max_facts, options.max_shared)
        reviews = dataset.reviews
        scale = rating_scale(dataset.interactions.rating,
                             reviews.rating if reviews is not None else None)
        self.reviews = ReviewText(reviews, n_items, n_users, scale, options.max_reviews)

    def sections(self, item: int) -> list[Section]:
        out = [Section("", (self.names[item],), 0)]
        for field, texts in self.extra_fields.items():
            text = first_sentences(clean(texts[item]), n=2, max_words=40)
            out.append(Section(humanise(field).capitalize(), (text,), 1, joiner=" "))
        out.append(self.attributes.section(item, 2))
        # Items without a name lead with what reviewers thought of them.
        out.append(self.reviews.item_rating_section(item, 2 if self.names[item] else 0))
        out.append(self.tags.item_section(item, 3))
        out.append(self.kg.section(item, 4))
        out.append(self.reviews.item_section(item, 5))
        return [s for s in out if s is not None and s.parts]

    def text(self, item: int) -> str:
        return scrub_pii(compose(self.sections(item), self.options.budget)).strip()


def item_texts(dataset: Dataset, options: TextOptions = TextOptions(),
               items: Iterable[int] | None = None) -> tuple[str, ...]:
    """One text per item (all items in index order, or the given indices)."""
    textualiser = ItemTextualiser(dataset, options)
    indices = range(dataset.n_items) if items is None else items
    return tuple(textualiser.text(int(i)) for i in indices)


def posted_item_text(dataset: Dataset, text: str | None,
                     attributes: Mapping[str, Any] | None = None, tags: Sequence[str] = (),
                     options: TextOptions = TextOptions()) -> str:
    """The text :class:`ItemTextualiser` gives an item that ``dataset`` does not hold yet, from
    what a client posts for it: ``text`` (its first line is the item's name, the rest fills
    the dataset's first other text field), ``attributes`` (by the dataset's item attribute
    columns; others are ignored) and ``tags``. A posted item has no KG facts and no reviews,
    so for the same content this is the text a ``cold-items`` item gets offline."""
    from fusionrec.data.schema import (Attributes, Interactions, ItemAttributes, ItemText, Tags,
                                       Vocabulary)
    from fusionrec.text.common import name_field

    fields = list(dataset.item_text.fields) if dataset.item_text is not None else []
    name = name_field(fields) or "title"
    others = [f for f in fields if f != name] or ["description"]
    head, _, rest = (text or "").strip().partition("\n")
    given = {name: head.strip(), others[0]: rest.strip()}
    order = fields or [name, others[0]]
    item_text = ItemText({f: (given.get(f, ""),) for f in order})
    columns = {}
    table = dataset.item_attributes.attributes if dataset.item_attributes is not None else None
    for column, values in (table.columns.items() if table is not None else ()):
        value = (attributes or {}).get(column)
        if np.asarray(values).dtype.kind in "fiu":  # numeric: NaN when missing, as loaded
            columns[column] = np.array([np.nan if value is None else float(value)])
        else:
            columns[column] = np.array(["" if value is None else str(value)], dtype=object)
    distinct = tuple(dict.fromkeys(str(t) for t in tags))
    posted_tags = (Tags(np.zeros(len(distinct), np.int64), np.arange(len(distinct)),
                        Vocabulary(distinct)) if distinct else None)
    one = Dataset(name=dataset.name, users=dataset.users, items=Vocabulary(("posted",)),
                  interactions=Interactions(np.zeros(0, np.int64), np.zeros(0, np.int64)),
                  item_attributes=ItemAttributes(Attributes(columns) if columns else None,
                                                 posted_tags),
                  item_text=item_text)
    return ItemTextualiser(one, options).text(0)
