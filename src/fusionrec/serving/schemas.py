"""Request and response bodies of the HTTP API (pydantic), kept apart from the engine's types.

Requests are strict about shape (unknown fields, wrong types, out-of-range numbers, NaN or
infinity anywhere, ids outside the id grammar are 422 before any handler runs); limits that
depend on settings or on the run (``k``, text length, batch size, the rating scale) are checked
in the handlers and the engine, still before any work is done.

The id grammar (``ID_PATTERN``), for users, items and friends, in bodies and paths: 1 to 128
characters from ``A-Z a-z 0-9 _ . : @ -``, starting with a letter, digit or ``_``. So every id
that can be written is one URL path segment as it is (no ``/``, no ``%``-escaping, never ``.``
or ``..``), and can be read, listed and forgotten.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,127}$"
ID_MAX = 128
#: Timestamps are unix seconds from 1970 up to 2100-01-01.
TIMESTAMP_MAX = 4_102_444_800.0
#: Hard caps in the schema; the service's own, lower limits are checked before any work.
TEXT_MAX = 100_000
ATTRIBUTE_CHARS = 256
COUNT_MAX = 1e9  # play / click counts

Id = Field(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)
IdStr = Annotated[str, Id]
ShortStr = Annotated[str, Field(max_length=ATTRIBUTE_CHARS)]
EventKind = Literal["like", "play", "click", "rating", "dislike"]
AttributeValue = ShortStr | float | int


_SURROGATE = re.compile("[\ud800-\udfff]")


class _Strict(BaseModel):
    # allow_inf_nan=False: NaN and +-inf are refused in every float field, nested ones too.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_lone_surrogates(cls, data: Any) -> Any:
        """JSON may escape half a UTF-16 pair ("\\ud800"); such a string cannot be stored or
        answered as UTF-8, so it is refused here rather than failing later (a 500)."""
        for value in (data.values() if isinstance(data, dict) else ()):
            if isinstance(value, dict):  # attributes: names and values
                value = [*value.keys(), *value.values()]
            for text in (value if isinstance(value, list) else [value]):
                if isinstance(text, str) and not text.isascii() and _SURROGATE.search(text):
                    raise ValueError("text holds a lone UTF-16 surrogate (invalid Unicode)")
        return data


# -- requests -------------------------------------------------------------------------------
class EventIn(_Strict):
    user_id: str = Id
    item_id: str = Id
    kind: EventKind = "like"
    value: float | None = Field(default=None, ge=-COUNT_MAX, le=COUNT_MAX,
                                description="rating (within the run's rating scale, see "
                                "docs/serving.md) or play/click count (>= 0)")
    timestamp: float | None = Field(default=None, ge=0, le=TIMESTAMP_MAX,
                                    description="unix seconds, 1970 up to 2100")

    @model_validator(mode="after")
    def _value_fits_kind(self) -> "EventIn":
        if self.kind == "rating" and self.value is None:
            raise ValueError("a rating event needs a value")
        if self.kind in ("play", "click") and self.value is not None and self.value < 0:
            raise ValueError(f"a {self.kind} count cannot be negative")
        return self


class UserIn(_Strict):
    user_id: str = Id
    text: str | None = Field(default=None, max_length=TEXT_MAX,
                             description="free text about the user")
    attributes: dict[ShortStr, AttributeValue] = Field(default_factory=dict, max_length=64)
    friends: list[IdStr] = Field(default_factory=list, max_length=1000)


class ItemIn(_Strict):
    item_id: str = Id
    text: str | None = Field(default=None, max_length=TEXT_MAX,
                             description="title / description of the item")
    attributes: dict[ShortStr, AttributeValue] = Field(default_factory=dict, max_length=64)
    tags: list[ShortStr] = Field(default_factory=list, max_length=256)


class EventsIn(_Strict):
    """A batch of writes: new or updated users and items first, then events. Each list holds
    at most ``max_batch`` records (413 beyond), checked again in total by the handler."""

    events: list[EventIn] = Field(default_factory=list, max_length=100_000)
    users: list[UserIn] = Field(default_factory=list, max_length=100_000)
    items: list[ItemIn] = Field(default_factory=list, max_length=100_000)


class PairIn(_Strict):
    user_id: str = Id
    item_id: str = Id


class ScoreIn(_Strict):
    pairs: list[PairIn] = Field(min_length=1, max_length=100_000)


class ReloadIn(_Strict):
    run_dir: str | None = Field(default=None, max_length=4096,
                                description="serve this run folder instead")


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
