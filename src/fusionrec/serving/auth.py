"""Bearer-key dependencies, deny-by-default: every ``/v1`` endpoint needs the key, except the
reads marked ``ReadAccess`` when the service runs with ``open_reads`` (an explicit setting).

They are ``async`` because FastAPI runs a plain-function dependency in its thread pool, a
hand-off that costs more than the check.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="the service's API key")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _check(request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
    key = request.app.state.service.settings.api_key
    if key is None:
        raise HTTPException(403, "this endpoint needs the API key, and none is configured: "
                                 "start the service with FUSIONREC_API_KEY set")
    given = credentials.credentials if credentials is not None else ""
    # compare_digest: the time taken does not reveal how much of the key was right.
    if not hmac.compare_digest(given.encode(), key.encode()):
        raise HTTPException(401, "missing or wrong API key (send Authorization: Bearer KEY)",
                            headers={"WWW-Authenticate": "Bearer"})


async def require_key(request: Request, credentials: Credentials) -> None:
    _check(request, credentials)


async def require_read(request: Request, credentials: Credentials) -> None:
    if not request.app.state.service.settings.open_reads:
        _check(request, credentials)


WriteAccess = Depends(require_key)
KeyAccess = Depends(require_key)  # reads that are never open: the raw event log
ReadAccess = Depends(require_read)
