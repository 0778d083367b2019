"""Review textualiser: a few review sentences per item, and what a user wrote."""

from __future__ import annotations

import numpy as np

from fusionrec.data.schema import Reviews
from fusionrec.text.budget import Section
from fusionrec.text.common import Groups, clean, first_sentences, fmt_number


class ReviewText:
    def __init__(self, reviews: Reviews | None, n_items: int, n_users: int, scale: float,
                 max_reviews: int = 3) -> None:
        self.reviews = reviews
        self.scale = scale
        self.max_reviews = max_reviews
        if reviews is None:
            return
        self.by_item = Groups.build(reviews.item, n_items)
        self.by_user = Groups.build(reviews.user, n_users)

    def _recent_first(self, rows: np.ndarray) -> np.ndarray:
        if self.reviews.timestamp is None:
            return rows[::-1]
        return rows[np.argsort(-self.reviews.timestamp[rows], kind="stable")]

    def _snippets(self, rows: np.ndarray, with_rating: bool) -> tuple[str, ...]:
        out = []
        for row in self._recent_first(rows):
            text = first_sentences(clean(self.reviews.text[row]), n=2, max_words=30)
            if not text:
                continue
            rating = self.reviews.rating
            if with_rating and rating is not None and not np.isnan(rating[row]):
                text = f"{text} ({fmt_number(float(rating[row]))} of {fmt_number(self.scale)})"
            out.append(f'"{text}"')
            if len(out) == self.max_reviews:
                break
        return tuple(out)

    def item_rating_section(self, item: int, priority: int) -> Section | None:
        """``"Rated 4.6 of 5 on average by 13 reviewers"`` (from the reviews' ratings)."""
        if self.reviews is None or self.reviews.rating is None:
            return None
        ratings = self.reviews.rating[self.by_item.rows(item)]
        ratings = ratings[~np.isnan(ratings)]
        if ratings.size == 0:
            return None
        who = "1 reviewer" if ratings.size == 1 else f"{ratings.size} reviewers"
        part = (f"Rated {ratings.mean():.1f} of {fmt_number(self.scale)} on average "
                f"by {who}")
        return Section("", (part,), priority)

    def item_section(self, item: int, priority: int) -> Section | None:
        if self.reviews is None:
            return None
        return Section("Reviews", self._snippets(self.by_item.rows(item), False), priority,
                       joiner=" ")

    def user_section(self, user: int, priority: int) -> Section | None:
        if self.reviews is None:
            return None
        return Section("They wrote", self._snippets(self.by_user.rows(user), True), priority,
                       joiner=" ")
