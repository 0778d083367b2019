"""Fused prompts: one ``(user context, candidate)`` text pair per (user, candidate) row.

The user side says how many of the row's earlier items were liked, lists the liked and the
disliked ones (most recent first), then the user's attributes and what friends like; the
candidate side is the item's name, attributes, tags, KG facts and review snippets. Each side is
filled within its token budget by :func:`fusionrec.text.budget.compose` (best parts of every
source before any source's long tail), counted with the model's own tokenizer, so the
tokenizer never has to cut. Texts come from the textualisers in :mod:`fusionrec.text` and are
PII-scrubbed; quasi-identifying columns (zip code, e-mail, ...) are never read.

The per-item and per-user pieces are computed once (:class:`PromptPieces`) and saved with the
model, so a loaded model builds the same prompts without the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from fusionrec.data.schema import Dataset
from fusionrec.models.common.history import RowHistory
from fusionrec.text.budget import Section, compose, count_tokens
from fusionrec.text.scrub import scrub_pii

#: Tokens the tokenizer adds around a text pair ([CLS] a [SEP] b [SEP]).
SPECIAL_TOKENS = 3
CANDIDATE_LABEL = "Candidate"


@dataclass(frozen=True)
class PromptPieces:
    """Text pieces that do not depend on the row: per item and per user."""

    item_names: tuple[str, ...]
    item_texts: tuple[str, ...]           # candidate text, already within the item budget
    user_parts: tuple[tuple[str, ...], ...]
    social_labels: tuple[str, ...]
    social_parts: tuple[tuple[str, ...], ...]

    @classmethod
    def from_dataset(cls, features: Dataset, sources: Sequence[str], item_budget: int,
                     count: Callable[[str], int] = count_tokens) -> "PromptPieces":
        """Pieces for every item and user of ``features`` (pass ``split.features``)."""
        from fusionrec.text.attributes import AttributeText
        from fusionrec.text.common import item_names
        from fusionrec.text.items import ItemTextualiser
        from fusionrec.text.social import SocialText

        names = item_names(features)
        items = ItemTextualiser(features)
        budget = item_budget - count(f"{CANDIDATE_LABEL}:")

        def item_text(i: int) -> str:
            sections = [Section("", (names[i],), 0)] if names[i] else []
            if "item" in sources:
                sections.append(items.attributes.section(i, 1))
            if "reviews" in sources:
                sections.append(items.reviews.item_rating_section(i, 1 if names[i] else 0))
                sections.append(items.reviews.item_section(i, 4))
            if "tags" in sources:
                sections.append(items.tags.item_section(i, 2))
            if "kg" in sources:
                sections.append(items.kg.section(i, 3))
            sections = [s for s in sections if s is not None and s.parts]
            return scrub_pii(compose(sections, budget, count)) if sections else "unknown"

        users = AttributeText(features.user_attributes)
        social = SocialText(features.social if "social" in sources else None,
                            features.interactions, names, features.n_users)
        friend = [social.section(u, 3) for u in range(features.n_users)]
        return cls(
            item_names=names,
            item_texts=tuple(item_text(i) for i in range(features.n_items)),
            user_parts=tuple(users.parts(u) if "user" in sources else ()
                             for u in range(features.n_users)),
            social_labels=tuple(s.label if s is not None else "" for s in friend),
            social_parts=tuple(s.parts if s is not None else () for s in friend))

    def to_json(self) -> dict:
        return {"item_names": list(self.item_names), "item_texts": list(self.item_texts),
                "user_parts": [list(p) for p in self.user_parts],
                "social_labels": list(self.social_labels),
                "social_parts": [list(p) for p in self.social_parts]}

    @classmethod
    def from_json(cls, raw: dict) -> "PromptPieces":
        return cls(tuple(raw["item_names"]), tuple(raw["item_texts"]),
                   tuple(tuple(p) for p in raw["user_parts"]), tuple(raw["social_labels"]),
                   tuple(tuple(p) for p in raw["social_parts"]))


class PromptBuilder:
    """Assembles the row prompts from :class:`PromptPieces` and each row's history."""

    def __init__(self, pieces: PromptPieces, sources: Sequence[str], max_length: int,
                 item_budget: int, item_noun: str = "item",
                 count: Callable[[str], int] = count_tokens) -> None:
        self.pieces = pieces
        self.sources = tuple(sources)
        self.user_budget = max_length - item_budget - SPECIAL_TOKENS
        self.noun = item_noun
        self.count = count

    def user_text(self, user: int, items: np.ndarray, labels: np.ndarray) -> str:
        """``items``/``labels``: one row's history, oldest first, ``-1`` for blanks."""
        keep = items >= 0
        items, labels = items[keep][::-1], labels[keep][::-1]  # most recent first
        sections = []
        n, liked = len(items), int(np.sum(labels > 0.5))
        if "positivity" in self.sources:
            text = (f"Liked {liked} of {n} recent {self.noun}s ({round(100 * liked / n)}%)"
                    if n else f"No earlier {self.noun}s known")
            sections.append(Section("", (text,), 0))
        if "history" in self.sources and n:
            names = self.pieces.item_names
            sections.append(Section("Liked", tuple(names[i] for i, y in zip(items, labels)
                                                   if y > 0.5), 1, joiner="; "))
            sections.append(Section("Disliked", tuple(names[i] for i, y in zip(items, labels)
                                                      if y <= 0.5), 1, joiner="; "))
        if "user" in self.sources:
            sections.append(Section("User", self.pieces.user_parts[user], 2, joiner="; "))
        if "social" in self.sources and self.pieces.social_parts[user]:
            sections.append(Section(self.pieces.social_labels[user],
                                    self.pieces.social_parts[user], 3))
        return scrub_pii(compose(sections, self.user_budget, self.count)) or "Unknown user"

    def item_text(self, item: int) -> str:
        return f"{CANDIDATE_LABEL}: {self.pieces.item_texts[item]}"

    def build(self, users: np.ndarray, items: np.ndarray,
              history: RowHistory) -> list[tuple[str, str]]:
        """One ``(user context, candidate)`` pair per row."""
        return [(self.user_text(int(u), history.items[r], history.labels[r]),
                 self.item_text(int(i))) for r, (u, i) in enumerate(zip(users, items))]


def tokenizer_counter(tokenizer) -> Callable[[str], int]:
    """Exact token count of a text under ``tokenizer`` (no special tokens)."""
    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])
    return count
