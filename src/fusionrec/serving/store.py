"""The event store: every interaction, new user and new item the service accepts.

A write returns only once its transaction is durable (SQLite: WAL with ``synchronous=FULL``,
so an acknowledged event survives SIGKILL and power loss; PostgreSQL: a committed
transaction). ``open_store(url)`` picks the backend: ``postgresql://...`` or
``postgres://...`` selects PostgreSQL (needs ``psycopg``, ``pip install 'fusionrec[postgres]'``);
anything else (``sqlite:///path`` or a plain path) is SQLite. Raw ids are stored, never model
indices, so the store outlives any one model (``fusionrec retrain`` reads it).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol

from fusionrec.errors import FusionRecError


class EventStoreError(FusionRecError, RuntimeError):
    """The store cannot be opened or written (bad URL, missing driver, unreachable server)."""


@dataclass(frozen=True)
class Event:
    """One interaction. ``kind``: like | play | click | rating | dislike; ``value``: rating or
    play count (``None`` for a plain like); ``timestamp``: unix seconds (client's or server's)."""

    user_id: str
    item_id: str
    kind: str = "like"
    value: float | None = None
    timestamp: float = 0.0
    event_id: int = 0  # assigned by the store


@dataclass(frozen=True)
class UserRecord:
    """A user's side data posted to the service (new users, or extra data for known ones)."""

    user_id: str
    text: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    friends: tuple[str, ...] = ()


@dataclass(frozen=True)
class ItemRecord:
    item_id: str
    text: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class WriteBatch:
    events: tuple[Event, ...] = ()
    users: tuple[UserRecord, ...] = ()
    items: tuple[ItemRecord, ...] = ()


class EventStore(Protocol):
    def write(self, batch: WriteBatch) -> tuple[Event, ...]:
        """Persist ``batch`` in one transaction; returns the events with ids once durable."""

    def events(self, user_id: str | None = None, limit: int | None = None,
               after_id: int = 0) -> list[Event]:
        """Events in write order with ids above ``after_id`` (of one user when given; the
        ``limit`` most recent)."""

    def users(self) -> list[UserRecord]: ...

    def items(self) -> list[ItemRecord]: ...

    def count(self) -> int: ...

    def forget_user(self, user_id: str) -> dict[str, int]:
        """Delete the user's events, their user record and their id in friend lists."""

    def close(self) -> None: ...


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events (id {serial} PRIMARY KEY, user_id TEXT NOT NULL, "
    "item_id TEXT NOT NULL, kind TEXT NOT NULL, value DOUBLE PRECISION, "
    "ts DOUBLE PRECISION NOT NULL, received DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, id)",
    "CREATE TABLE IF NOT EXISTS users (user_id TEXT PRIMARY KEY, text TEXT, "
    "attributes TEXT NOT NULL, friends TEXT NOT NULL, updated DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS items (item_id TEXT PRIMARY KEY, text TEXT, "
    "attributes TEXT NOT NULL, tags TEXT NOT NULL, updated DOUBLE PRECISION NOT NULL)",
)
_UPSERT_USER = ("INSERT INTO users VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (user_id) DO "
                "UPDATE SET text = excluded.text, attributes = excluded.attributes, "
                "friends = excluded.friends, updated = excluded.updated")
_UPSERT_ITEM = ("INSERT INTO items VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (item_id) DO "
                "UPDATE SET text = excluded.text, attributes = excluded.attributes, "
                "tags = excluded.tags, updated = excluded.updated")
_INSERT_EVENT = ("INSERT INTO events (user_id, item_id, kind, value, ts, received) "
                 "VALUES ({p}, {p}, {p}, {p}, {p}, {p}) RETURNING id")


class _SQLStore:
    """The SQL both backends share; subclasses give ``_connect`` and the placeholder."""

    placeholder = "?"
    serial = "INTEGER"

    def __init__(self) -> None:
        self._lock = threading.Lock()  # one connection, used by one thread at a time
        self._conn = self._connect()
        with self._lock:
            cursor = self._conn.cursor()
            for statement in _SCHEMA:
                cursor.execute(statement.format(serial=self.serial))
            self._conn.commit()

    def _connect(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _sql(self, template: str) -> str:
        return template.format(p=self.placeholder)

    def write(self, batch: WriteBatch) -> tuple[Event, ...]:
        now = time.time()
        written = []
        with self._lock:
            cursor = self._conn.cursor()
            try:
                self._begin(cursor)
                for user in batch.users:
                    cursor.execute(self._sql(_UPSERT_USER), (
                        user.user_id, user.text, json.dumps(dict(user.attributes)),
                        json.dumps(list(user.friends)), now))
                for item in batch.items:
                    cursor.execute(self._sql(_UPSERT_ITEM), (
                        item.item_id, item.text, json.dumps(dict(item.attributes)),
                        json.dumps(list(item.tags)), now))
                for event in batch.events:
                    ts = event.timestamp or now
                    cursor.execute(self._sql(_INSERT_EVENT), (
                        event.user_id, event.item_id, event.kind, event.value, ts, now))
                    (event_id,) = cursor.fetchone()
                    written.append(Event(event.user_id, event.item_id, event.kind,
                                         event.value, ts, int(event_id)))
                self._conn.commit()  # durable here: only now may the caller acknowledge
            except Exception:
                self._conn.rollback()
                raise
        return tuple(written)

    def _begin(self, cursor) -> None:
        """Start the write transaction (drivers that auto-begin need nothing)."""

    def events(self, user_id: str | None = None, limit: int | None = None,
               after_id: int = 0) -> list[Event]:
        sql = self._sql("SELECT user_id, item_id, kind, value, ts, id FROM events "
                        "WHERE id > {p}")
        args: list[Any] = [int(after_id)]
        if user_id is not None:
            sql += self._sql(" AND user_id = {p}")
            args.append(user_id)
        if limit is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY id DESC LIMIT {int(limit)}) AS recent"
        sql += " ORDER BY id"
        rows = self._query(sql, args)
        return [Event(u, i, k, v, float(ts), int(n)) for u, i, k, v, ts, n in rows]

    def users(self) -> list[UserRecord]:
        rows = self._query("SELECT user_id, text, attributes, friends FROM users ORDER BY "
                           "updated, user_id", [])
        return [UserRecord(u, t, json.loads(a), tuple(json.loads(f))) for u, t, a, f in rows]

    def items(self) -> list[ItemRecord]:
        rows = self._query("SELECT item_id, text, attributes, tags FROM items ORDER BY "
                           "updated, item_id", [])
        return [ItemRecord(i, t, json.loads(a), tuple(json.loads(g))) for i, t, a, g in rows]

    def count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM events", [])[0][0])

    def forget_user(self, user_id: str) -> dict[str, int]:
        """Delete everything stored about ``user_id`` in one transaction: their events, their
        user record, and their id in other users' friend lists; then make the deleted rows
        unrecoverable where the backend allows (:meth:`_compact`). Returns counts."""
        with self._lock:
            cursor = self._conn.cursor()
            try:
                self._begin(cursor)
                cursor.execute(self._sql("DELETE FROM events WHERE user_id = {p}"), (user_id,))
                events = cursor.rowcount
                cursor.execute(self._sql("DELETE FROM users WHERE user_id = {p}"), (user_id,))
                records = cursor.rowcount
                cursor.execute("SELECT user_id, friends FROM users")
                links = 0
                for other, friends in cursor.fetchall():
                    listed = json.loads(friends)
                    if user_id in listed:
                        kept = json.dumps([f for f in listed if f != user_id])
                        cursor.execute(self._sql("UPDATE users SET friends = {p} WHERE "
                                                 "user_id = {p}"), (kept, other))
                        links += 1
                self._conn.commit()
            except Exception:
                self._conn.rollback()
                raise
            self._compact()
        return {"events": max(events, 0), "user_records": max(records, 0),
                "friend_links": links}

    def _compact(self) -> None:
        """Rewrite storage so deleted rows leave no readable copy (SQLite: see subclass;
        PostgreSQL keeps dead tuples until its autovacuum runs)."""

    def _query(self, sql: str, args) -> list[tuple]:
        with self._lock:
            cursor = self._conn.cursor()
            cursor.execute(sql, args)
            rows = cursor.fetchall()
            self._conn.commit()  # end the read transaction (PostgreSQL keeps one open)
            return rows

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class SQLiteEventStore(_SQLStore):
    """SQLite in WAL mode with ``synchronous=FULL``: a commit is on disk (WAL fsynced) before
    ``write`` returns; readers never block the writer."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__()

    def _connect(self):
        try:
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so the write lock is
            # taken up front and a transaction never fails half-way on a busy database.
            conn = sqlite3.connect(str(self.path), check_same_thread=False,
                                   isolation_level=None, timeout=30.0)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous=FULL")
            # Deleted rows are overwritten with zeros, not just unlinked (forgetting a user).
            conn.execute("PRAGMA secure_delete=ON")
        except sqlite3.Error as error:
            raise EventStoreError(f"cannot open SQLite event store {self.path}: {error}") \
                from None
        if str(self.path) != ":memory:" and mode.lower() != "wal":
            raise EventStoreError(f"{self.path}: SQLite refused WAL mode (got {mode!r})")
        return conn

    def _begin(self, cursor) -> None:
        cursor.execute("BEGIN IMMEDIATE")

    def _compact(self) -> None:
        # VACUUM rebuilds the file without free pages; the checkpoint copies the WAL into it
        # and truncates the WAL, whose old frames would still hold the deleted rows.
        self._conn.execute("VACUUM")
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @property
    def journal_mode(self) -> str:
        return self._query("PRAGMA journal_mode", [])[0][0]

    @property
    def synchronous(self) -> int:
        return int(self._query("PRAGMA synchronous", [])[0][0])


class PostgresEventStore(_SQLStore):
    """PostgreSQL through psycopg 3; one connection, commits are durable (server default
    ``synchronous_commit=on``)."""

    placeholder = "%s"
    serial = "BIGSERIAL"

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__()

    def _connect(self):
        try:
            import psycopg
        except ImportError:
            raise EventStoreError("a postgresql:// database URL needs the psycopg driver: "
                                  "pip install 'fusionrec[postgres]'") from None
        try:
            return psycopg.connect(self.url)
        except psycopg.Error as error:
            raise EventStoreError(f"cannot connect to PostgreSQL: {error}") from None


def open_store(url: str) -> EventStore:
    """The store a database URL names (see the module docstring)."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresEventStore(url)
    if "://" in url and not url.startswith("sqlite://"):
        raise EventStoreError(f"unsupported database URL {url.split('://')[0]}://...; use a "
                              "path, sqlite:///PATH or postgresql://...")
    path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else url
    if url.startswith("sqlite://") and not url.startswith("sqlite:///"):
        raise EventStoreError(f"bad SQLite URL {url!r}; use sqlite:///relative/path or "
                              "sqlite:////absolute/path")
    return SQLiteEventStore(path)
