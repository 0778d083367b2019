"""Helpers of the real-components tier (``-m real``): a PostgreSQL server, headless Chromium.

A test that finds its component missing skips with the reason, except when
``FUSIONREC_REQUIRE_REAL=1`` is set: then it fails, so CI (``.ci/run``, which starts
PostgreSQL and installs Chromium) can never pass by silently skipping the tier.
``FUSIONREC_TEST_POSTGRES_URL`` names a server whose user may create databases
(``.ci/postgres.sh start`` prints one); each test gets a fresh database on it.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from typing import Iterator, NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest

POSTGRES_ENV = "FUSIONREC_TEST_POSTGRES_URL"
REQUIRE_ENV = "FUSIONREC_REQUIRE_REAL"


def real_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def missing_component(reason: str) -> NoReturn:
    """Skip for ``reason``, or fail when the real tier is required."""
    if real_required():
        pytest.fail(f"{REQUIRE_ENV} is set but {reason}", pytrace=False)
    pytest.skip(reason)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """The URL of a new, empty database on the test server, dropped afterwards (tests never
    see each other's rows, and ids start at 1 as on a new SQLite file)."""
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        missing_component(f"{POSTGRES_ENV} is not set (eval \"$(.ci/postgres.sh start)\")")
    try:
        import psycopg
    except ImportError:
        missing_component("psycopg is not installed (pip install 'fusionrec[postgres]')")
    name = f"fusionrec_test_{uuid.uuid4().hex[:16]}"
    try:
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as error:
        missing_component(f"cannot create a database on {POSTGRES_ENV}: {error}")
    try:
        yield _with_database(server, name)
    finally:
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as admin:
            # FORCE: a killed server's connection may linger for a moment.
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def integrity_errors() -> tuple[type[Exception], ...]:
    """The constraint-violation exceptions of every installed driver."""
    import sqlite3

    errors: list[type[Exception]] = [sqlite3.IntegrityError]
    try:
        import psycopg

        errors.append(psycopg.IntegrityError)
    except ImportError:
        pass
    return tuple(errors)
