"""People you may know for a served run: who, and why.

A served run is an item recommender (``fusion``, ``lightgcn``, ``bpr-mf``), so people are
derived from what it has: ``score(u, v) = AA(u, v) + cos(f_u, f_v)``, where ``AA`` is
Adamic–Adar on the service's live friendship graph (the run's training friendships plus
recorded friend events) and ``f`` are the run's fused user vectors (as updated by recorded
events). Adamic–Adar ranks friends of friends; the cosine (in [-1, 1]) orders people with equal
mutual-friend evidence by taste, and ranks everyone when a user has no friends yet. The user
and their current friends are never returned. This mirrors ``fusion-links`` with its prior
weight fixed at 1 (see docs/people.md).

Each person comes with the evidence: mutual friends (fewest friends first: a mutual friend
with few friends says more), shared items (rarest first) and equal user attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fusionrec.serving.index import unit

METHOD = "adamic-adar on the friendship graph + cosine of fused user vectors"


@dataclass(frozen=True)
class Person:
    user: int
    score: float
    mutual_friends: tuple[int, ...]   # user indices, fewest friends first (capped)
    n_mutual_friends: int
    shared_items: tuple[int, ...]     # item indices, rarest first (capped)
    n_shared_items: int
    shared_attributes: tuple[str, ...]  # "column=value"


def people_you_may_know(engine, user: int, k: int = 10, max_mutual: int = 10,
                        max_items: int = 5) -> list[Person]:
    """The top-``k`` people for ``user`` (an engine index), best first."""
    n = len(engine.user_fused)  # people are the run's users
    friends_of = engine.updater.friends_of
    friends = friends_of(user)
    prior = np.zeros(n)
    for middle in friends.tolist():
        theirs = friends_of(middle)
        if len(theirs) > 1:  # log(1) = 0: a friend with no other friend links nobody
            prior[theirs[theirs < n]] += 1.0 / np.log(len(theirs))
    taste = unit(engine.user_fused) @ unit(engine.user_view(user).fused)  # (n,)
    score = prior + taste
    score[friends[friends < n]] = -np.inf
    if user < n:
        score[user] = -np.inf
    candidates = np.flatnonzero(np.isfinite(score))
    top = candidates[np.argsort(-score[candidates], kind="stable")[:k]]
    popularity = np.bincount(engine.seen.indices, minlength=len(engine.item_x))
    mine = engine.user_view(user).history
    return [_person(engine, user, int(v), float(score[v]), friends, mine, popularity,
                    max_mutual, max_items) for v in top]


def _person(engine, user: int, other: int, score: float, friends: np.ndarray,
            mine: np.ndarray, popularity: np.ndarray, max_mutual: int,
            max_items: int) -> Person:
    friends_of = engine.updater.friends_of
    mutual = np.intersect1d(friends, friends_of(other))
    degree = np.array([len(friends_of(int(z))) for z in mutual], dtype=np.int64)
    mutual = mutual[np.lexsort((mutual, degree))]
    shared = np.intersect1d(mine, engine.user_view(other).history)
    shared = shared[shared < len(popularity)]  # new items have no training popularity
    shared = shared[np.lexsort((shared, popularity[shared]))]
    return Person(other, score, tuple(int(z) for z in mutual[:max_mutual]), len(mutual),
                  tuple(int(i) for i in shared[:max_items]), len(shared),
                  _shared_attributes(engine, user, other))


def _shared_attributes(engine, user: int, other: int) -> tuple[str, ...]:
    attrs = engine.run.features.user_attributes
    n = len(engine.user_fused)
    if attrs is None or user >= n or other >= n:
        return ()
    found = []
    for name, column in attrs.columns.items():
        if column.dtype.kind not in "OUS":  # numeric columns: equality says little
            continue
        a, b = str(column[user]), str(column[other])
        if a and a == b:
            found.append(f"{name}={a}")
    return tuple(found)
