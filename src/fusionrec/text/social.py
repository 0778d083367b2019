"""Social textualiser: how many friends a user has and what those friends like."""

from __future__ import annotations

import numpy as np

from fusionrec.data.schema import Interactions, Social
from fusionrec.text.budget import Section
from fusionrec.text.common import Groups


class SocialText:
    def __init__(self, social: Social | None, interactions: Interactions,
                 item_names: tuple[str, ...], n_users: int, max_items: int = 6) -> None:
        self.social = social
        self.names = item_names
        self.max_items = max_items
        if social is None:
            return
        self.source, self.target = social.both_directions()
        self.friends = Groups.build(self.source, n_users)
        self.inter = interactions
        self.by_user = Groups.build(interactions.user, n_users)

    def section(self, user: int, priority: int) -> Section | None:
        if self.social is None:
            return None
        friends = np.unique(self.target[self.friends.rows(user)])
        friends = friends[friends != user]
        if friends.size == 0:
            return None
        own = set(self.inter.item[self.by_user.rows(user)].tolist())
        # One vote per friend and item, however often the friend played it.
        pairs = [np.unique(self.inter.item[self.by_user.rows(f)]) for f in friends]
        items, votes = np.unique(np.concatenate(pairs), return_counts=True)
        order = np.lexsort((items, -votes))
        parts = []
        for k in order:
            item = int(items[k])
            if item in own or not self.names[item]:
                continue
            parts.append(self.names[item] + (f" ({votes[k]})" if votes[k] > 1 else ""))
            if len(parts) == self.max_items:
                break
        who = "1 friend" if friends.size == 1 else f"{friends.size} friends"
        return Section(f"Has {who}; friends like", tuple(parts) or ("nothing named",),
                       priority)
