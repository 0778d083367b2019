"""The ``/v1`` endpoints. Handlers translate raw ids <-> indices and schemas <-> engine values;
the work happens in :class:`~fusionrec.serving.engine.Engine` and
:class:`~fusionrec.serving.service.Service`.

Handlers that do model or CPU work (recommend, score, similar, profiles, writes, reloads)
are plain functions, which FastAPI runs in its thread pool: the event loop stays free for
``/healthz`` and for rejecting oversized or malformed requests while they run. Only O(1)
handlers are ``async``.

Access (see :mod:`fusionrec.serving.auth` and docs/serving.md): every endpoint needs the key;
``ReadAccess`` ones answer without it only when the service runs with ``open_reads``.
Status codes: an id the service does not know, in a path or a body, is 404 on every endpoint;
an id outside the id grammar, or any other invalid value, is 422; over a size limit is 413.
"""

from __future__ import annotations

import json
import math
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Body, Path, Query, Request, Response

from fusionrec.serving import schemas as S
from fusionrec.serving.auth import KeyAccess, ReadAccess, WriteAccess
from fusionrec.serving.engine import RequestError
from fusionrec.data.events import Event, ItemRecord, UserRecord, WriteBatch
from fusionrec.serving.limits import BatchLimitRoute

router = APIRouter(prefix="/v1", route_class=BatchLimitRoute)
K = Annotated[int, Query(ge=1, description="number of items")]
UserId = Annotated[str, Path(min_length=1, max_length=S.ID_MAX, pattern=S.ID_PATTERN)]
ItemId = Annotated[str, Path(min_length=1, max_length=S.ID_MAX, pattern=S.ID_PATTERN)]


def _service(request: Request):
    return request.app.state.service


def _check_k(service, k: int) -> None:
    if k > service.settings.max_k:
        raise RequestError(422, f"k={k} is above the limit of {service.settings.max_k} "
                           "(FUSIONREC_MAX_K)")


def _item(engine, index: int) -> S.ItemOut:
    return S.ItemOut(item_id=engine.items.ids[index], name=engine.items.names[index])


def _explanation(engine, explanation) -> S.ExplanationOut:
    friends = explanation.friends
    return S.ExplanationOut(
        kg_paths=[S.KGPathOut(from_item=_item(engine, p.source_item),
                              hops=[S.KGHopOut(relation=h.relation, entity=h.entity)
                                    for h in p.hops], score=p.score)
                  for p in explanation.kg_paths],
        friends=[engine.users.ids[f] for f in friends.friends] if friends else [],
        n_friends=friends.n_friends if friends else 0,
        shared_attributes=[S.SharedAttributeOut(feature=a.feature, n_liked=a.n_liked,
                                                examples=[_item(engine, i) for i in a.examples])
                           for a in explanation.shared_attributes],
        sources=[S.SourceOut(**vars(c)) for c in explanation.sources])


@router.get("/users", response_model=S.UsersOut, dependencies=[ReadAccess])
async def list_users(request: Request,
                     limit: Annotated[int, Query(ge=1, le=10000)] = 100) -> S.UsersOut:
    """Some user ids (training users first), for pickers."""
    engine = _service(request).engine
    return S.UsersOut(users=engine.users.ids[:limit], total=len(engine.users))


@router.get("/users/{user_id}", response_model=S.UserOut, dependencies=[ReadAccess])
def get_user(request: Request, user_id: UserId,
             limit: Annotated[int, Query(ge=0, le=10000)] = 50) -> S.UserOut:
    """A user's positive history (training items and recorded events) and friends."""
    engine = _service(request).engine
    user = engine.user_index(user_id)
    view = engine.user_view(user)
    history = view.history
    return S.UserOut(user_id=user_id, new=engine.users.is_new(user),
                     history=[_item(engine, int(i)) for i in history[:limit]],
                     n_history=len(history),
                     friends=[engine.users.ids[f] for f in engine.updater.friends_of(user)])


@router.get("/users/{user_id}/recommendations", response_model=S.RecommendationsOut,
            dependencies=[ReadAccess])
def recommendations(request: Request, user_id: UserId, k: K = 10, explain: bool = False,
                    exclude_seen: bool = True) -> Response:
    """Top-``k`` items: FAISS candidates re-ranked by the model; reflects recorded events."""
    service = _service(request)
    _check_k(service, k)
    engine = service.engine  # one engine for the whole request, even across a reload
    user = engine.user_index(user_id)
    items, scores = engine.recommend(user, k, exclude_seen)
    explanations = engine.explain(user, items) if explain else [None] * len(items)
    ids, names = engine.items.ids, engine.items.names
    out = [{"item_id": ids[i], "name": names[i], "score": s,
            "explanation": _explanation(engine, e).model_dump() if e is not None else None}
           for i, s, e in zip(items.tolist(), scores.tolist(), explanations)]
    return _json({"user_id": user_id, "k": k, "recommendations": out})


@router.post("/score", response_model=S.ScoresOut, dependencies=[ReadAccess])
def score(request: Request, body: S.ScoreIn) -> S.ScoresOut:
    """The model's score and probability (sigmoid) of each (user, item) pair."""
    service = _service(request)
    engine = service.engine
    if len(body.pairs) > service.settings.max_batch:
        raise RequestError(413, f"{len(body.pairs)} pairs; the limit is "
                           f"{service.settings.max_batch} (FUSIONREC_MAX_BATCH)")
    users, items = [], []
    for j, pair in enumerate(body.pairs):
        for kind, raw, vocab, dest in (("user", pair.user_id, engine.users, users),
                                       ("item", pair.item_id, engine.items, items)):
            index = vocab.get(raw)
            if index is None:  # 404, as for the same unknown id in a path
                raise RequestError(404, f"pairs[{j}]: unknown {kind} {raw!r}")
            dest.append(index)
    logits = engine.score(np.array(users), np.array(items))
    return S.ScoresOut(head="ctr" if engine.space.has_ctr else "retrieval", scores=[
        S.ScoreOut(user_id=p.user_id, item_id=p.item_id, score=float(z),
                   probability=_sigmoid(float(z))) for p, z in zip(body.pairs, logits)])


@router.get("/items/{item_id}/similar", response_model=S.SimilarOut, dependencies=[ReadAccess])
def similar(request: Request, item_id: ItemId, k: K = 10) -> Response:
    """Items whose fused vectors are most cosine-similar to this item's."""
    service = _service(request)
    _check_k(service, k)
    engine = service.engine
    items, sims = engine.similar(engine.item_index(item_id), k)
    ids, names = engine.items.ids, engine.items.names
    return _json({"item_id": item_id, "similar": [
        {"item_id": ids[i], "name": names[i], "score": s}
        for i, s in zip(items.tolist(), sims.tolist())]})


@router.post("/events", response_model=S.EventsOut, status_code=201,
             dependencies=[WriteAccess])
def record_events(request: Request, body: S.EventsIn) -> S.EventsOut:
    """Record interactions (and new users/items); answered only once durably stored."""
    service = _service(request)
    size = len(body.events) + len(body.users) + len(body.items)
    if size == 0:
        raise RequestError(422, "nothing to record: give events, users or items")
    if size > service.settings.max_batch:
        raise RequestError(413, f"{size} records in one request; the limit is "
                           f"{service.settings.max_batch} (FUSIONREC_MAX_BATCH)")
    _check_texts(body, service.settings.max_text_chars)  # before scrubbing reads the text
    batch = WriteBatch(
        events=tuple(Event(e.user_id, e.item_id, e.kind, e.value, e.timestamp or 0.0)
                     for e in body.events),
        users=tuple(UserRecord(u.user_id, _scrubbed(u.text), dict(u.attributes),
                               tuple(u.friends)) for u in body.users),
        items=tuple(ItemRecord(i.item_id, _scrubbed(i.text), dict(i.attributes), tuple(i.tags))
                    for i in body.items))
    written = service.record(batch)
    return S.EventsOut(accepted=len(written), event_ids=[e.event_id for e in written],
                       users=[u.user_id for u in body.users],
                       items=[i.item_id for i in body.items])


@router.get("/users/{user_id}/events", response_model=S.UserEventsOut,
            dependencies=[KeyAccess])
def user_events(request: Request, user_id: UserId,
                limit: Annotated[int, Query(ge=1, le=100000)] = 1000) -> S.UserEventsOut:
    """What the store holds for a user (most recent ``limit``, oldest first)."""
    service = _service(request)
    service.engine.user_index(user_id)  # 404 for ids the service has never seen
    events = service.store.events(user_id=user_id, limit=limit)
    return S.UserEventsOut(user_id=user_id, events=[
        S.EventOut(event_id=e.event_id, user_id=e.user_id, item_id=e.item_id, kind=e.kind,
                   value=e.value, timestamp=e.timestamp) for e in events])


@router.post("/admin/reload", response_model=S.ReloadOut, dependencies=[WriteAccess])
def reload(request: Request, body: Annotated[S.ReloadIn | None, Body()] = None) -> S.ReloadOut:
    """Load a run folder (default: the current one, e.g. after ``fusionrec retrain``) and swap
    it in atomically; requests in flight finish on the old model."""
    from fusionrec.serving.engine import EngineError
    from fusionrec.training.artifacts import RunError

    try:
        result = _service(request).reload(body.run_dir if body else None)
    except FileNotFoundError as error:
        raise RequestError(404, str(error)) from None
    except (RunError, EngineError) as error:  # the old model keeps serving
        raise RequestError(422, f"reload refused: {error}") from None
    return S.ReloadOut(**result)


def _json(payload: dict) -> Response:
    """The hot read paths build plain dicts and skip FastAPI's response re-validation, which
    costs more than the recommendation itself; ``response_model`` still documents them."""
    return Response(json.dumps(payload, separators=(",", ":"), allow_nan=False).encode(),
                    media_type="application/json")


def _check_texts(body: S.EventsIn, limit: int) -> None:
    from fusionrec.serving.updates import check_text

    for j, user in enumerate(body.users):
        check_text(f"users[{j}] ({user.user_id!r})", user.text, limit)
    for j, item in enumerate(body.items):
        check_text(f"items[{j}] ({item.item_id!r})", item.text, limit)


def _scrubbed(text: str | None) -> str | None:
    """Posted free text without contact details: it is stored, encoded by the LM for cold
    start and shown as a new item's name, and none of those may hold PII."""
    from fusionrec.text.scrub import scrub_pii

    return None if text is None else scrub_pii(text)


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
