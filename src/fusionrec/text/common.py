"""Helpers shared by the per-source textualisers: row grouping, labels, number formatting."""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass

import numpy as np

from fusionrec.data.schema import Dataset
from fusionrec.text.scrub import scrub_pii

#: Text fields tried, in order, for an item's display name.
NAME_FIELDS: tuple[str, ...] = ("name", "title", "item_name", "product_name", "label")


@dataclass(frozen=True)
class Groups:
    """Row indices of a table grouped by a dense key (user or item), built once in O(n log n)."""

    order: np.ndarray    # row indices sorted by key (stable, so file order survives in a group)
    offsets: np.ndarray  # group k is order[offsets[k]:offsets[k + 1]]

    @classmethod
    def build(cls, keys: np.ndarray, n_keys: int) -> "Groups":
        keys = np.asarray(keys, dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        valid = keys[order] >= 0  # -1 marks "unknown" (e.g. a tag with no tagging user)
        order = order[valid]
        offsets = np.searchsorted(keys[order], np.arange(n_keys + 1))
        return cls(order, offsets)

    def rows(self, key: int) -> np.ndarray:
        return self.order[self.offsets[key]:self.offsets[key + 1]]

    def size(self, key: int) -> int:
        return int(self.offsets[key + 1] - self.offsets[key])


def clean(text: str) -> str:
    """Scrubbed, single-spaced text; line breaks survive (they end sentences)."""
    lines = (" ".join(line.split()) for line in html.unescape(str(text)).splitlines())
    return "\n".join(scrub_pii(line) for line in lines if line)


_TRAILING_ARTICLE = re.compile(r"^(?P<body>.+), (?P<article>The|A|An|Les|La|Le|L'|Il|Das|Der"
                               r"|Die|El|Los|Las) (?P<year>\(\d{4}\))$")


def display_name(text: str) -> str:
    """``"Nutty Professor, The (1996)"`` -> ``"The Nutty Professor (1996)"`` (catalogue-style
    titles read oddly to a language model); other names unchanged."""
    match = _TRAILING_ARTICLE.match(text)
    if match is None:
        return text
    article = match["article"]
    sep = "" if article.endswith("'") else " "
    return f"{article}{sep}{match['body']} {match['year']}"


def name_field(fields) -> str | None:
    """The item text field holding display names: a name-like field, else the first one."""
    preferred = [f for f in NAME_FIELDS if f in fields] or list(fields)[:1]
    return preferred[0] if preferred else None


def item_names(dataset: Dataset) -> tuple[str, ...]:
    """Display name per item (PII-scrubbed), ``""`` where an item has none."""
    fields = dataset.item_text.fields if dataset.item_text is not None else {}
    field = name_field(fields)
    if field is None:
        return ("",) * dataset.n_items
    return tuple(display_name(" ".join(clean(value).split())) for value in fields[field])


def humanise(name: str) -> str:
    """``"music.artist.origin"`` -> ``"artist origin"``; ``"release_year"`` -> ``"release year"``.

    Freebase-style relation names repeat their domain as the first segment, so it is dropped;
    repeated adjacent words (``film.film.genre``) are collapsed.
    """
    segments = name.split(".")
    if len(segments) > 2:
        segments = segments[1:]
    words = re.sub(r"[_\-/]+", " ", " ".join(segments)).split()
    collapsed = [w for k, w in enumerate(words) if k == 0 or w.lower() != words[k - 1].lower()]
    return " ".join(collapsed)


def fmt_number(value: float) -> str:
    """``1997.0`` -> ``"1997"``, ``4.25`` -> ``"4.2"``, ``12345`` -> ``"12,345"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if float(value).is_integer():
        as_int = int(value)
        # Years and small numbers read better without a thousands separator.
        return str(as_int) if 1000 <= as_int <= 2100 else f"{as_int:,}"
    return f"{value:.1f}"


def first_sentences(text: str, n: int = 1, max_words: int = 40) -> str:
    """The first ``n`` sentences (or lines) of ``text``, at most ``max_words`` words."""
    pieces = [p.strip() for p in re.split(r"(?<=[.!?])\s+|\n+", text) if p.strip()]
    # A line without a full stop (a review's summary) still ends a sentence.
    pieces = [p if p.endswith((".", "!", "?")) else p + "." for p in pieces]
    words = " ".join(pieces[:n]).split()
    short = " ".join(words[:max_words])
    return short + (" ..." if len(words) > max_words else "")
