"""Event store (SQLite WAL, PostgreSQL selection) and service settings."""

from __future__ import annotations

import os
import sqlite3

import pytest

from fusionrec.serving.settings import ServeSettings, SettingsError
from fusionrec.serving.store import (Event, EventStoreError, ItemRecord, PostgresEventStore,
                                     SQLiteEventStore, UserRecord, WriteBatch, open_store)


def _batch(*pairs, users=(), items=()):
    return WriteBatch(tuple(Event(u, i, "like") for u, i in pairs), tuple(users), tuple(items))


def test_sqlite_is_wal_with_full_sync(tmp_path):
    store = SQLiteEventStore(tmp_path / "e.sqlite3")
    assert store.journal_mode == "wal"
    assert store.synchronous == 2  # FULL: the WAL is fsynced on every commit
    store.close()


def test_write_assigns_ids_and_reads_back(tmp_path):
    store = open_store(str(tmp_path / "e.sqlite3"))
    written = store.write(_batch(("u1", "i1"), ("u2", "i2"), ("u1", "i3")))
    assert [e.event_id for e in written] == [1, 2, 3]
    assert all(e.timestamp > 0 for e in written)  # server time when the client gave none
    assert [(e.user_id, e.item_id) for e in store.events()] == [("u1", "i1"), ("u2", "i2"),
                                                                ("u1", "i3")]
    assert [e.item_id for e in store.events(user_id="u1")] == ["i1", "i3"]
    assert [e.item_id for e in store.events(user_id="u1", limit=1)] == ["i3"]
    assert [e.event_id for e in store.events(after_id=2)] == [3]
    assert store.count() == 3
    store.close()


def test_events_survive_reopening_and_other_connections(tmp_path):
    path = tmp_path / "e.sqlite3"
    store = open_store(f"sqlite:///{path}")
    store.write(_batch(("u1", "i1"), users=[UserRecord("n1", "hello", {"age": 3}, ("u1",))],
                       items=[ItemRecord("x1", "text", {"genre": "rock"}, ("loud",))]))
    # Another connection sees the committed rows at once (no close needed).
    with sqlite3.connect(path) as other:
        assert other.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1
    store.close()
    again = open_store(str(path))
    assert again.events()[0].item_id == "i1"
    assert again.users() == [UserRecord("n1", "hello", {"age": 3}, ("u1",))]
    assert again.items() == [ItemRecord("x1", "text", {"genre": "rock"}, ("loud",))]
    again.close()


def test_user_upsert_replaces(tmp_path):
    store = open_store(str(tmp_path / "e.sqlite3"))
    store.write(_batch(users=[UserRecord("n1", "a")]))
    store.write(_batch(users=[UserRecord("n1", "b", friends=("u2",))]))
    assert store.users() == [UserRecord("n1", "b", {}, ("u2",))]
    store.close()


def test_failed_batch_is_rolled_back_whole(tmp_path):
    store = open_store(str(tmp_path / "e.sqlite3"))
    store.write(_batch(("u1", "i1")))
    bad = WriteBatch((Event("u1", "i2"), Event(None, "i3")))  # NOT NULL violation mid-batch
    with pytest.raises(sqlite3.IntegrityError):
        store.write(bad)
    assert [e.item_id for e in store.events()] == ["i1"]
    store.write(_batch(("u1", "i4")))  # the store is still usable
    assert store.count() == 2
    store.close()


def test_url_selects_backend(tmp_path):
    with pytest.raises(EventStoreError, match="unsupported database URL"):
        open_store("mysql://host/db")
    with pytest.raises(EventStoreError, match="bad SQLite URL"):
        open_store("sqlite://relative")
    with pytest.raises(EventStoreError) as error:
        # psycopg missing -> install hint; present -> the connection error, never a traceback
        open_store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    assert "psycopg" in str(error.value) or "PostgreSQL" in str(error.value)


@pytest.mark.skipif(not os.environ.get("FUSIONREC_TEST_POSTGRES_URL"),
                    reason="set FUSIONREC_TEST_POSTGRES_URL to test against a PostgreSQL server")
def test_postgres_round_trip():
    store = open_store(os.environ["FUSIONREC_TEST_POSTGRES_URL"])
    assert isinstance(store, PostgresEventStore)
    before = store.count()
    written = store.write(_batch(("pg-u", "pg-i"), users=[UserRecord("pg-u", "x")]))
    assert store.count() == before + 1
    assert store.events(after_id=written[0].event_id - 1)[0].item_id == "pg-i"
    store.close()


def test_settings_from_env_and_overrides(tmp_path):
    env = {"FUSIONREC_RUN_DIR": str(tmp_path), "FUSIONREC_PORT": "9001",
           "FUSIONREC_OPEN_READS": "yes", "FUSIONREC_API_KEY": "k" * 12,
           "FUSIONREC_DATA_DIR": ""}
    settings = ServeSettings.from_env(env, port=9002)
    assert settings.port == 9002 and settings.open_reads is True and settings.data_dir is None
    assert settings.database_url == str(tmp_path / "events.sqlite3")
    assert settings.public()["api_key"] == "set"
    key_file = tmp_path / "key"
    key_file.write_text("from-a-file-123\n")
    settings = ServeSettings.from_env({"FUSIONREC_API_KEY_FILE": str(key_file)}, run_dir="r")
    assert settings.api_key == "from-a-file-123"


@pytest.mark.parametrize("env, message", [
    ({"FUSIONREC_PORT": "http"}, "FUSIONREC_PORT must be an integer"),
    ({"FUSIONREC_OPEN_READS": "maybe"}, "FUSIONREC_OPEN_READS must be true or false"),
    ({"FUSIONREC_API_KEY": "short"}, "at least 8"),
    ({"FUSIONREC_MAX_K": "0"}, "max_k must be >= 1"),
])
def test_settings_errors_name_the_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        ServeSettings.from_env({"FUSIONREC_RUN_DIR": "run", **env})
    with pytest.raises(SettingsError, match="no run folder"):
        ServeSettings.from_env({})
