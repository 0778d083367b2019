"""``DELETE /v1/users/{user_id}``: forget a user (write key required).

Separate from :mod:`fusionrec.serving.routes` because it is an administrative, rare and slow
operation (it rewrites the run folder and rebuilds the engine) rather than a request path.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from fusionrec.serving.auth import WriteAccess
from fusionrec.serving.schemas import ID_MAX, ID_PATTERN

router = APIRouter(prefix="/v1")


class ForgetRunOut(BaseModel):
    removed: dict[str, int] = Field(description="what was deleted from the run, counted")
    recomputed: list[str] = Field(description="rows re-derived without the user")
    needs_retrain: list[str] = Field(description="what still carries the user's influence "
                                                 "until `fusionrec forget --retrain`")
    retrained: bool


class ForgetOut(BaseModel):
    user_id: str
    forgotten: bool = True
    store: dict[str, int] = Field(description="events, user records and friend links deleted")
    run: ForgetRunOut | None = Field(None, description="null when the model never saw the user")


@router.delete("/users/{user_id}", response_model=ForgetOut, dependencies=[WriteAccess])
def forget_user(request: Request, user_id: Annotated[str, Path(
        min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)]) -> ForgetOut:
    """Forget a user: their events, records and friend links in the store; their rows, split
    entries, cached text embeddings and dependent rows in the run folder; the engine is
    rebuilt without them. Idempotent in effect: a second call answers 404."""
    from fusionrec.privacy.forget import ForgetError

    service = request.app.state.service
    try:
        result = service.forget(user_id)
    except ForgetError as error:
        from fusionrec.serving.engine import RequestError

        raise RequestError(422, str(error)) from None
    run = result["run"]
    return ForgetOut(user_id=user_id, store=result["store"],
                     run=None if run is None else ForgetRunOut(
                         removed=run["removed"], recomputed=run["recomputed"],
                         needs_retrain=run["needs_retrain"], retrained=run["retrained"]))
