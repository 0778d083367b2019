"""Optional extras: which pip extra carries which packages, and a one-line hint when one is missing.

The core install trains, evaluates and recommends; serving, tuning, the DP head and the benchmark
scripts each need an extra (``pyproject.toml``). Code that needs one calls :func:`require` before
importing, so a missing package is one line naming the extra to install, not a traceback from
deep inside a framework. Only :func:`importlib.util.find_spec` is used: nothing heavy is imported,
so ``fusionrec --help`` can ask too.
"""

from __future__ import annotations

from importlib.util import find_spec

from fusionrec.errors import FusionRecError

# Import names (not distribution names) of the packages each extra in pyproject.toml installs.
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "serve": ("fastapi", "uvicorn", "faiss", "prometheus_client", "swagger_ui_bundle"),
    "tune": ("optuna",),
    "dp": ("opacus",),
    "bench": ("sentence_transformers", "httpx"),
    "postgres": ("psycopg",),
    "browser": ("selenium",),
}


class MissingExtraError(FusionRecError, ImportError):
    """A feature's optional packages are not installed; the message names the extra."""

    def __init__(self, extra: str, what: str, module: str) -> None:
        self.extra, self.what, self.module = extra, what, module
        super().__init__(f"{_needs(extra, what)} ({module} is not installed)")


def _needs(extra: str, what: str) -> str:
    # Short enough to stay one line in an 80-column ``--help``.
    return f"{what} needs the '{extra}' extra: pip install 'fusionrec[{extra}]'"


def missing_module(extra: str) -> str | None:
    """The first package of ``extra`` that cannot be imported, or ``None`` when all can."""
    try:
        modules = EXTRA_MODULES[extra]
    except KeyError:
        raise ValueError(f"unknown extra {extra!r}; known: {', '.join(EXTRA_MODULES)}") from None
    for module in modules:
        try:
            if find_spec(module) is None:
                return module
        except (ImportError, ValueError):  # a broken or half-removed install counts as missing
            return module
    return None


def require(extra: str, what: str) -> None:
    """Raise :class:`MissingExtraError` when ``extra``'s packages are not all installed."""
    module = missing_module(extra)
    if module is not None:
        raise MissingExtraError(extra, what, module)


def hint(extra: str, what: str) -> str | None:
    """The one-line install hint for ``what`` when ``extra`` is missing, else ``None``."""
    return None if missing_module(extra) is None else _needs(extra, what)
