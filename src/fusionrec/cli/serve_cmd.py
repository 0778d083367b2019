"""``fusionrec serve RUN_DIR``: the HTTP service (FastAPI + uvicorn) over a trained run.

Settings come from the flags, then ``FUSIONREC_*`` environment variables (see
:class:`fusionrec.serving.settings.ServeSettings`); the API key only from the environment
(``FUSIONREC_API_KEY`` or ``FUSIONREC_API_KEY_FILE``), so it never shows in ``ps``.
"""

from __future__ import annotations

import argparse

from fusionrec.cli.extras_hint import epilog, require_extra
from fusionrec.cli.main import UserError


def register(subparsers) -> None:
    serve = subparsers.add_parser(
        "serve", help="serve recommendations, explanations and event recording over HTTP",
        description="Serve a run folder over HTTP. Writes need FUSIONREC_API_KEY.",
        epilog=epilog("serve", "fusionrec serve"))
    serve.add_argument("run_dir", help="run folder written by `fusionrec train`")
    serve.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8000)")
    serve.add_argument("--database", dest="database_url", default=None,
                       help="event store: a SQLite path, sqlite:///PATH or postgresql://... "
                       "(default RUN_DIR/events.sqlite3)")
    serve.add_argument("--open-reads", action="store_const", const=True, default=None,
                       help="recommendations, scores, similar items and user profiles answer "
                       "without the API key (default: every endpoint needs it)")
    serve.add_argument("--data-dir", default=None, help="data root the run's dataset loads from")
    serve.add_argument("--index", default=None, choices=("auto", "flat", "hnsw"),
                       help="FAISS candidate index (default auto: HNSW from 5,000 items)")
    serve.add_argument("--threads", type=int, default=None,
                       help="torch/FAISS threads per request (default 1)")
    serve.add_argument("--log-level", default=None,
                       choices=("critical", "error", "warning", "info", "debug"))
    serve.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    import logging

    require_extra("serve", "fusionrec serve")

    from fusionrec.serving.settings import ServeSettings

    settings = ServeSettings.from_env(
        run_dir=args.run_dir, host=args.host, port=args.port, database_url=args.database_url,
        open_reads=args.open_reads, data_dir=args.data_dir, threads=args.threads,
        index=args.index, log_level=args.log_level)
    _preflight(settings)
    import uvicorn

    from fusionrec.serving.app import create_app

    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.api_key is None:
        logging.getLogger("fusionrec.serve").warning(
            "FUSIONREC_API_KEY is not set: every /v1 endpoint is refused%s",
            " except the open reads" if settings.open_reads else "")
    # access_log off: one log line per request costs more than the request at 300 req/s.
    # timeout_graceful_shutdown: SIGTERM stops the process even with requests in flight.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level=settings.log_level, access_log=False, timeout_graceful_shutdown=5,
                timeout_keep_alive=settings.keep_alive_s, h11_max_incomplete_event_size=65536)
    return 0


def _preflight(settings) -> None:
    """Fail with one line, before uvicorn starts, on what would only fail in the lifespan."""
    from fusionrec.data.events import open_store
    from fusionrec.models.common.persist import read_model_name
    from fusionrec.models.registry import MODELS, model_class
    from fusionrec.models.servable import servable_class
    from fusionrec.training.artifacts import verify_run

    try:
        verify_run(settings.run_dir)
        name = read_model_name(settings.run_dir)
    except (FileNotFoundError, ValueError) as error:  # model.json missing or unreadable
        raise UserError(str(error)) from None
    if name not in MODELS or not servable_class(model_class(name)):
        servable = sorted(n for n in MODELS if servable_class(model_class(n)))
        raise UserError(f"{settings.run_dir} holds a {name!r} model, which does not serve; "
                        f"`fusionrec serve` serves runs of {', '.join(servable)}")
    open_store(settings.database_url).close()
