"""``create_app(settings)``: the FastAPI application of ``fusionrec serve``.

Nothing is created at import time: the lifespan opens the event store, loads the run folder
(vectors, FAISS index, cold-start helpers), replays the stored events, and only then does the
server accept requests. ``GET /`` serves the single-page demo in ``static/index.html``;
``GET /docs`` serves Swagger UI from the files of the ``swagger-ui-bundle`` package (no CDN),
so the documentation works offline.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse

from fusionrec.serving.engine import RequestError
from fusionrec.serving.limits import BodyLimit, validation_error
from fusionrec.serving.metrics import MetricsMiddleware, ServiceMetrics
from fusionrec.serving.settings import ServeSettings

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def create_app(settings: ServeSettings) -> FastAPI:
    from fusionrec import __version__
    from fusionrec.serving.people_routes import router as people_router
    from fusionrec.serving.privacy_routes import router as privacy_router
    from fusionrec.serving.routes import router

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        import torch
        from threadpoolctl import threadpool_limits

        from fusionrec.serving.service import Service

        # One-row requests: extra intra-op threads (torch, BLAS) only add hand-off latency
        # under load. Restored when the app stops (tests run apps inside their process).
        threads_before = torch.get_num_threads()
        torch.set_num_threads(settings.threads)
        with threadpool_limits(limits=settings.threads):
            service = Service(settings, metrics=metrics)
            app.state.service = service
            log.info("serving %s (%s)", settings.run_dir, service.engine.describe())
            try:
                yield
            finally:
                service.close()
                torch.set_num_threads(threads_before)

    app = FastAPI(title="FusionRec", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None, description="Multi-source recommendations with explanations.")
    metrics = ServiceMetrics()  # per app: two apps in one process never share counters
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    # Added last, so outermost: an oversized body is refused before anything else runs.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.include_router(router)
    app.include_router(privacy_router)
    app.include_router(people_router)
    _mount_docs(app)

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, error: RequestError):
        return JSONResponse({"detail": str(error)}, status_code=error.status)

    @app.get("/healthz", include_in_schema=True)
    async def healthz():
        """The process is up (liveness)."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request):
        """A model is loaded and requests can be answered (readiness)."""
        service = getattr(request.app.state, "service", None)
        if service is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return {"status": "ready", "run_dir": service.run_dir,
                "engine": service.engine.describe(), "events": service.replayed_to}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus_metrics():
        """Prometheus text format."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return PlainTextResponse(generate_latest(metrics.registry),
                                 media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    return app


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` with its script and style sheet from ``/docs-assets``."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="FusionRec API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")
