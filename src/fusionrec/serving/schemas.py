"""Request and response bodies of the HTTP API (pydantic), kept apart from the engine's types.

Requests are strict about shape (unknown fields, wrong types and out-of-range numbers are 422
before any handler runs); limits that depend on settings (``k``, text length, batch size) are
checked in the handlers.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Id = Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$")
EventKind = Literal["like", "play", "click", "rating", "dislike"]
AttributeValue = str | float | int


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests -------------------------------------------------------------------------------
class EventIn(_Strict):
    user_id: str = Id
    item_id: str = Id
    kind: EventKind = "like"
    value: float | None = Field(default=None, description="rating (1..5) or play count")
    timestamp: float | None = Field(default=None, ge=0, description="unix seconds")

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("value must be a finite number")
        return value

    @model_validator(mode="after")
    def _rating_has_value(self) -> "EventIn":
        if self.kind == "rating" and self.value is None:
            raise ValueError("a rating event needs a value")
        return self


class UserIn(_Strict):
    user_id: str = Id
    text: str | None = Field(default=None, description="free text about the user")
    attributes: dict[str, AttributeValue] = Field(default_factory=dict, max_length=64)
    friends: list[str] = Field(default_factory=list, max_length=1000)


class ItemIn(_Strict):
    item_id: str = Id
    text: str | None = Field(default=None, description="title / description of the item")
    attributes: dict[str, AttributeValue] = Field(default_factory=dict, max_length=64)
    tags: list[str] = Field(default_factory=list, max_length=256)


class EventsIn(_Strict):
    """A batch of writes: new or updated users and items first, then events."""

    events: list[EventIn] = Field(default_factory=list)
    users: list[UserIn] = Field(default_factory=list)
    items: list[ItemIn] = Field(default_factory=list)


class PairIn(_Strict):
    user_id: str = Id
    item_id: str = Id


class ScoreIn(_Strict):
    pairs: list[PairIn] = Field(min_length=1)


class ReloadIn(_Strict):
    run_dir: str | None = Field(default=None, description="serve this run folder instead")


# -- responses ------------------------------------------------------------------------------
class ItemOut(BaseModel):
    item_id: str
    name: str = ""


class KGHopOut(BaseModel):
    relation: str
    entity: str


class KGPathOut(BaseModel):
    from_item: ItemOut
    hops: list[KGHopOut]
    score: float


class SharedAttributeOut(BaseModel):
    feature: str
    n_liked: int
    examples: list[ItemOut]


class SourceOut(BaseModel):
    source: str
    user_weight: float
    item_weight: float
    score_without: float
    delta: float


class ExplanationOut(BaseModel):
    kg_paths: list[KGPathOut] = []
    friends: list[str] = []
    n_friends: int = 0
    shared_attributes: list[SharedAttributeOut] = []
    sources: list[SourceOut] = []


class RecommendationOut(BaseModel):
    item_id: str
    name: str = ""
    score: float
    explanation: ExplanationOut | None = None


class RecommendationsOut(BaseModel):
    user_id: str
    k: int
    recommendations: list[RecommendationOut]


class ScoreOut(BaseModel):
    user_id: str
    item_id: str
    score: float
    probability: float


class ScoresOut(BaseModel):
    head: Literal["ctr", "retrieval"]
    scores: list[ScoreOut]


class SimilarItemOut(BaseModel):
    item_id: str
    name: str = ""
    score: float  # cosine similarity of the fused item vectors


class SimilarOut(BaseModel):
    item_id: str
    similar: list[SimilarItemOut]


class EventOut(BaseModel):
    event_id: int
    user_id: str
    item_id: str
    kind: str
    value: float | None
    timestamp: float


class EventsOut(BaseModel):
    accepted: int
    event_ids: list[int]
    users: list[str]
    items: list[str]


class UserEventsOut(BaseModel):
    user_id: str
    events: list[EventOut]


class UserOut(BaseModel):
    user_id: str
    new: bool
    history: list[ItemOut]
    n_history: int
    friends: list[str]


class UsersOut(BaseModel):
    users: list[str]
    total: int


class ReloadOut(BaseModel):
    run_dir: str
    seconds: float
    replayed_events: int
