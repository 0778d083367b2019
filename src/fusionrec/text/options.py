"""Textualiser options and version strings (part of every embedding-cache key)."""

from __future__ import annotations

from dataclasses import dataclass

#: Bump when the item text layout changes, so cached embeddings of old texts are not reused
#: under the new layout's name (the text hash would catch changed texts anyway; the version
#: makes the change visible in cache metadata).
ITEM_TEXT_VERSION = "item-text-1"
USER_TEXT_VERSION = "user-text-1"


@dataclass(frozen=True)
class TextOptions:
    """How much of each source a text may hold. ``budget`` is in (approximate) tokens and should
    sit a little under the encoder's ``max_length``."""

    budget: int = 120
    max_tags: int = 10
    max_facts: int = 8
    max_shared: int = 3
    max_reviews: int = 3
    max_history: int = 12
    max_friend_items: int = 6
    max_attribute_chars: int = 60

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"text option {name} must be a positive int, got {value!r}")
        if self.budget < 16:
            raise ValueError(f"text option budget must be >= 16 tokens, got {self.budget}")

    @classmethod
    def for_max_length(cls, max_length: int) -> "TextOptions":
        """Options whose budget leaves room for special tokens and the estimate's error."""
        return cls(budget=max(16, int(max_length * 0.92) - 2))
