"""Guards that run before any handler: a request-body size limit and a 422 body that always
serialises.

``BodyLimit`` is plain ASGI so it sees the request before FastAPI reads or parses anything: a
declared ``Content-Length`` over the limit is answered 413 without reading a byte, and a body
streamed without one (chunked) is counted as it arrives and cut off at the limit.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from fusionrec.errors import FusionRecError


class BodyTooLarge(FusionRecError, HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit. An ``HTTPException``
    because FastAPI turns any other error while reading the body into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))


class BodyLimit:
    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _reject(send, self.max_bytes)
            return
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large(limit: int) -> str:
    return f"request body over the limit of {limit} bytes (FUSIONREC_MAX_BODY_BYTES)"


async def _reject(send, limit: int) -> None:
    body = json.dumps({"detail": _too_large(limit)}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


async def validation_error(request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 with every value made JSON-safe: a NaN or infinite input is echoed as a
    string ("nan", "inf"), where the default handler failed to serialise it (a 500)."""
    return JSONResponse({"detail": _json_safe(error.errors())}, status_code=422)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, str):  # a rejected 1 MB string is not echoed whole
        value = value if len(value) <= 200 else value[:200] + "..."
        # A lone surrogate (e.g. "\ud800" in the request) cannot be written as UTF-8.
        return value.encode("utf-8", "replace").decode("utf-8")
    if value is None or isinstance(value, (int, bool)):
        return value
    return str(value)  # e.g. an exception object in ``ctx``


# Top-level lists of a POST body whose entries count against FUSIONREC_MAX_BATCH.
BATCH_FIELDS = ("events", "users", "items", "pairs")


class BatchLimitRoute(APIRoute):
    """A route that counts a JSON body's records before FastAPI validates them.

    Validating 10,000 records takes ~0.2 s on the event loop (measured by
    ``benchmarks/hostile_input.py``: /healthz p99 200-290 ms during such a request), while
    parsing and counting them in the thread pool takes a few milliseconds; so an oversized
    batch is a 413 before any record is validated. Bodies within the limit go on unchanged
    (their validation stays FastAPI's, against the schema that OpenAPI publishes).
    """

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def counted(request: Request):
            service = getattr(request.app.state, "service", None)
            if request.method == "POST" and service is not None:
                limit = service.settings.max_batch
                size = await run_in_threadpool(_batch_size, await request.body())
                if size > limit:
                    return JSONResponse({"detail": f"{size} records in one request; the limit "
                                         f"is {limit} (FUSIONREC_MAX_BATCH)"}, status_code=413)
            return await handler(request)

        return counted


def _batch_size(body: bytes) -> int:
    """Records in the top-level batch lists; 0 for a body that is not a JSON object (FastAPI's
    own validation answers those)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return 0
    if not isinstance(data, dict):
        return 0
    return sum(len(data[f]) for f in BATCH_FIELDS if isinstance(data.get(f), list))
