"""Tag textualiser: an item's most used tags (with counts) and a user's most used tags."""

from __future__ import annotations

import numpy as np

from fusionrec.data.schema import Tags
from fusionrec.text.budget import Section
from fusionrec.text.common import Groups, clean


class TagText:
    def __init__(self, tags: Tags | None, n_items: int, n_users: int, max_tags: int = 10) -> None:
        self.tags = tags
        self.max_tags = max_tags
        if tags is None:
            return
        self.names = tuple(clean(name) for name in tags.vocabulary.ids)
        self.weights = (np.ones(len(tags), np.float64) if tags.weight is None
                        else tags.weight.astype(np.float64))
        self.by_item = Groups.build(tags.item, n_items)
        self.by_user = Groups.build(tags.user, n_users) if tags.user is not None else None

    def _top(self, rows: np.ndarray) -> tuple[str, ...]:
        if rows.size == 0:
            return ()
        totals = np.bincount(self.tags.tag[rows], weights=self.weights[rows])
        present = np.flatnonzero(totals)
        # Heaviest first; ties by tag index so the text is deterministic.
        order = present[np.lexsort((present, -totals[present]))][: self.max_tags]
        return tuple(f"{self.names[t]} ({totals[t]:g})" if totals[t] > 1 else self.names[t]
                     for t in order if self.names[t])

    def item_section(self, item: int, priority: int) -> Section | None:
        if self.tags is None:
            return None
        return Section("Tags", self._top(self.by_item.rows(item)), priority)

    def user_section(self, user: int, priority: int) -> Section | None:
        if self.tags is None or self.by_user is None:
            return None
        return Section("Tags they use", self._top(self.by_user.rows(user)), priority)
