"""The plain values explanation providers return."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class KGHop:
    """One edge of a KG path: ``relation`` between the previous node and ``entity``."""

    relation: str
    entity: str  # display name (or raw id) of the node reached


@dataclass(frozen=True)
class KGPath:
    """A path from an item the user liked (``source_item``) to the recommended item through
    the knowledge graph; ``hops`` run from the source item's entity to the target's."""

    source_item: int
    hops: tuple[KGHop, ...]
    score: float  # higher = more specific (short paths through rare entities)


@dataclass(frozen=True)
class FriendEvidence:
    """Friends of the user who interacted with the item."""

    friends: tuple[int, ...]
    n_friends: int  # how many friends the user has in all


@dataclass(frozen=True)
class SharedAttribute:
    """A feature (``column=value`` or ``tag:name``) of the item that ``n_liked`` of the user's
    items also carry (``examples``: a few of them)."""

    feature: str
    n_liked: int
    examples: tuple[int, ...]


@dataclass(frozen=True)
class SourceContribution:
    """One fused source's share in the score: its fusion weight on the user and item side,
    and how the score changes when the source is removed from both (``full - without``)."""

    source: str
    user_weight: float
    item_weight: float
    score_without: float
    delta: float


@dataclass(frozen=True)
class Explanation:
    item: int
    score: float
    kg_paths: tuple[KGPath, ...] = ()
    friends: FriendEvidence | None = None
    shared_attributes: tuple[SharedAttribute, ...] = ()
    sources: tuple[SourceContribution, ...] = field(default=())
