"""``ServeSettings``: every knob of the HTTP service, typed and validated once at startup.

Values come from keyword arguments (the CLI) over ``FUSIONREC_*`` environment variables over
the defaults: ``FUSIONREC_RUN_DIR``, ``FUSIONREC_DATABASE_URL``, ``FUSIONREC_API_KEY``,
``FUSIONREC_OPEN_READS``, ``FUSIONREC_MAX_K``, ... (the field name upper-cased). The API key is
read from the environment (or a file) rather than a command-line flag, so it never shows in
``ps``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from fusionrec.errors import FusionRecError

ENV_PREFIX = "FUSIONREC_"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


class SettingsError(FusionRecError, ValueError):
    """An invalid setting; the message names the variable or flag."""


@dataclass(frozen=True)
class ServeSettings:
    """Settings of ``fusionrec serve``.

    - ``run_dir``: the run folder to serve (``fusionrec train --out``).
    - ``database_url``: ``sqlite:///PATH``, a plain path (SQLite, WAL) or
      ``postgresql://...``; default ``RUN_DIR/events.sqlite3``.
    - ``api_key``: the bearer key every ``/v1`` endpoint needs; without one they are refused
      (403), except the open reads below when ``open_reads`` is set.
    - ``open_reads``: recommendations, scores, similar items and user profiles answer without
      the key (deny-by-default: off). The event log, writes and admin always need the key.
    - ``data_dir``: data root for rebuilding the run's dataset (default: where it trained).
    - ``max_k``/``candidates``: largest ``k`` a request may ask; FAISS candidates re-ranked
      by the model (at least ``k``).
    - ``max_text_chars``/``max_batch``: limits on posted text and on records per request.
    - ``max_body_bytes``: larger request bodies are refused (413) before they are read.
    - ``keep_alive_s``: idle keep-alive connections are closed after this many seconds.
    - ``text_cold_start``: encode posted user/item text with the run's LM for cold start.
    - ``index``: FAISS candidates from an exact scan (``flat``), an HNSW graph re-scored
      exactly (``hnsw``), or ``auto`` (HNSW from 5,000 items).
    - ``threads``: torch/FAISS threads; 1 is fastest for one-row requests under load.
    """

    run_dir: str
    database_url: str = ""
    api_key: str | None = None
    open_reads: bool = False
    data_dir: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_k: int = 100
    candidates: int = 100
    max_text_chars: int = 2000
    max_batch: int = 1000
    max_body_bytes: int = 1_048_576
    keep_alive_s: int = 5
    text_cold_start: bool = True
    index: str = "auto"
    threads: int = 1
    log_level: str = "info"

    def __post_init__(self) -> None:
        if not str(self.run_dir):
            raise SettingsError("run_dir must be given (FUSIONREC_RUN_DIR or RUN_DIR)")
        object.__setattr__(self, "run_dir", str(self.run_dir))
        if not self.database_url:
            path = Path(self.run_dir) / "events.sqlite3"
            object.__setattr__(self, "database_url", str(path))
        if self.api_key is not None and len(self.api_key) < 8:
            raise SettingsError("api_key must have at least 8 characters")
        for name, low in (("port", 0), ("max_k", 1), ("candidates", 1), ("max_text_chars", 1),
                          ("max_batch", 1), ("threads", 1), ("max_body_bytes", 1024),
                          ("keep_alive_s", 1)):
            if getattr(self, name) < low:
                raise SettingsError(f"{name} must be >= {low}, got {getattr(self, name)}")
        if self.index not in ("auto", "flat", "hnsw"):
            raise SettingsError(f"index must be auto, flat or hnsw, got {self.index!r}")
        if self.port > 65535:
            raise SettingsError(f"port must be <= 65535, got {self.port}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 **overrides: Any) -> "ServeSettings":
        """Settings from ``FUSIONREC_*`` variables, with ``overrides`` (not ``None``) on top.
        ``FUSIONREC_API_KEY_FILE`` names a file holding the key."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + field.name.upper())
            if raw is not None:
                values[field.name] = _parse(field.name, raw, field.type)
        key_file = environ.get(ENV_PREFIX + "API_KEY_FILE")
        if key_file and "api_key" not in values:
            try:
                values["api_key"] = Path(key_file).read_text(encoding="utf-8").strip()
            except OSError as error:
                raise SettingsError(f"FUSIONREC_API_KEY_FILE: {error}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "run_dir" not in values:
            raise SettingsError("no run folder: pass RUN_DIR or set FUSIONREC_RUN_DIR")
        try:
            return cls(**values)
        except TypeError as error:
            raise SettingsError(str(error)) from None

    def public(self) -> dict[str, Any]:
        """The settings without the secret (for logs and ``/readyz``)."""
        out = dataclasses.asdict(self)
        out["api_key"] = "set" if self.api_key else None
        return out


def _parse(name: str, raw: str, hint: Any) -> Any:
    hint = str(hint)
    env = ENV_PREFIX + name.upper()
    if hint.startswith("bool"):
        if raw.strip().lower() in _TRUE:
            return True
        if raw.strip().lower() in _FALSE:
            return False
        raise SettingsError(f"{env} must be true or false, got {raw!r}")
    if hint.startswith("int"):
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{env} must be an integer, got {raw!r}") from None
    return raw or None if "None" in hint else raw
