"""Interaction-history textualiser: a user's recent or favourite items, with ratings."""

from __future__ import annotations

import numpy as np

from fusionrec.data.schema import Interactions
from fusionrec.text.budget import Section
from fusionrec.text.common import Groups, fmt_number


def rating_scale(*ratings: np.ndarray | None) -> float:
    """The top of the rating scale seen in the data (1 for like/dislike labels)."""
    tops = [float(np.nanmax(r)) for r in ratings if r is not None and r.size]
    return max(tops) if tops else 1.0


class HistoryText:
    def __init__(self, interactions: Interactions, item_names: tuple[str, ...], n_users: int,
                 scale: float, max_history: int = 12) -> None:
        self.inter = interactions
        self.names = item_names
        self.scale = scale
        self.max_history = max_history
        self.by_user = Groups.build(interactions.user, n_users)

    def _ordered(self, rows: np.ndarray) -> tuple[np.ndarray, str]:
        """Rows in the order worth reading first, and how that order is described."""
        inter = self.inter
        if inter.timestamp is not None:
            return rows[np.argsort(-inter.timestamp[rows], kind="stable")], "Recently"
        if inter.weight is not None:
            return rows[np.argsort(-inter.weight[rows], kind="stable")], "Favourites"
        return rows[::-1], "History"

    def sections(self, user: int, priority: int) -> list[Section]:
        rows = self.by_user.rows(user)
        if rows.size == 0:
            return []
        rows, how = self._ordered(rows)
        named = np.array([r for r in rows if self.names[self.inter.item[r]]], dtype=np.int64)
        rating = self.inter.rating
        if named.size == 0:  # items without names (e.g. Amazon ids): say how much and how well
            count = "1 item" if rows.size == 1 else f"{rows.size} items"
            if rating is None:
                return [Section("", (f"Interacted with {count}",), priority)]
            mean = float(np.nanmean(rating[rows]))
            text = f"Rated {count}, {mean:.1f} of {fmt_number(self.scale)} on average"
            return [Section("", (text,), priority)]
        named = named[: self.max_history * 2]
        names = [self.names[self.inter.item[r]] for r in named]
        if rating is None:
            label = "Favourites" if how == "Favourites" else f"{how} interacted with"
            return [Section(label, tuple(names[: self.max_history]), priority)]
        if self.scale <= 1:  # binary labels read as like / dislike
            liked = tuple(n for n, r in zip(names, named) if rating[r] > 0.5)
            disliked = tuple(n for n, r in zip(names, named) if rating[r] <= 0.5)
            return [Section("Liked", liked[: self.max_history], priority),
                    Section("Disliked", disliked[: self.max_history], priority)]
        parts = tuple(f"{n}: {fmt_number(float(rating[r]))}" for n, r in zip(names, named))
        label = f"{how} rated (out of {fmt_number(self.scale)})"
        return [Section(label, parts[: self.max_history], priority, joiner="; ")]
