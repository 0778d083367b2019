"""Friends of the user who interacted with the recommended item."""

from __future__ import annotations

from typing import Callable

import numpy as np

from fusionrec.explain.types import FriendEvidence


def friends_who_interacted(friends: np.ndarray, item: int,
                           history_of: Callable[[int], np.ndarray],
                           limit: int = 5) -> FriendEvidence | None:
    """``history_of(friend)`` gives a friend's sorted positive items (training + recorded)."""
    who = []
    for friend in np.asarray(friends).tolist():
        history = history_of(int(friend))
        at = np.searchsorted(history, item)
        if at < len(history) and history[at] == item:
            who.append(int(friend))
    if not who:
        return None
    return FriendEvidence(tuple(who[:limit]), len(friends))


def friends_who_interacted_many(friends: np.ndarray, items: np.ndarray,
                                history_of: Callable[[int], np.ndarray],
                                limit: int = 5) -> list[FriendEvidence | None]:
    """:func:`friends_who_interacted` for several items (each friend's history read once)."""
    friends = np.asarray(friends).tolist()
    items = np.asarray(items)
    hits = np.zeros((len(items), len(friends)), dtype=bool)
    for column, friend in enumerate(friends):
        hits[:, column] = np.isin(items, history_of(int(friend)))
    return [FriendEvidence(tuple(friends[c] for c in np.flatnonzero(row)[:limit]), len(friends))
            if row.any() else None for row in hits]
