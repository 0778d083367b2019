"""``GET /v1/users/{user_id}/people``: people a user may know, with the evidence.

A router of its own (the logic is in :mod:`fusionrec.serving.people`). It reveals who a user
knows and what they listen to, so it always needs the key, even with ``open_reads``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from fusionrec.serving.auth import KeyAccess
from fusionrec.serving.routes import UserId
from fusionrec.serving.engine import RequestError
from fusionrec.serving.schemas import ItemOut

router = APIRouter(prefix="/v1")


class PersonOut(BaseModel):
    user_id: str
    score: float = Field(description="Adamic–Adar + cosine of fused user vectors")
    mutual_friends: list[str] = Field(description="shared friends' ids, fewest friends first")
    n_mutual_friends: int
    shared_items: list[ItemOut] = Field(description="items both have, rarest first")
    n_shared_items: int
    shared_attributes: list[str] = Field(description="equal user attributes, column=value")


class PeopleOut(BaseModel):
    user_id: str
    k: int
    method: str
    people: list[PersonOut]


@router.get("/users/{user_id}/people", response_model=PeopleOut, dependencies=[KeyAccess])
def people(request: Request, user_id: UserId,
           k: Annotated[int, Query(ge=1, description="number of people")] = 10) -> PeopleOut:
    """People ``user_id`` may know: not themself, not a current friend. Needs the key."""
    from fusionrec.serving.people import METHOD, people_you_may_know

    service = request.app.state.service
    if k > service.settings.max_k:
        raise RequestError(422, f"k={k} is above the limit of {service.settings.max_k} "
                           "(FUSIONREC_MAX_K)")
    engine = service.engine  # one engine for the whole request, even across a reload
    user = engine.user_index(user_id)
    users, items = engine.users.ids, engine.items
    found = people_you_may_know(engine, user, k)
    return PeopleOut(user_id=user_id, k=k, method=METHOD, people=[
        PersonOut(user_id=users[p.user], score=p.score,
                  mutual_friends=[users[z] for z in p.mutual_friends],
                  n_mutual_friends=p.n_mutual_friends,
                  shared_items=[ItemOut(item_id=items.ids[i], name=items.names[i])
                                for i in p.shared_items],
                  n_shared_items=p.n_shared_items,
                  shared_attributes=list(p.shared_attributes)) for p in found])
