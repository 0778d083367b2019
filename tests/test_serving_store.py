"""Event store (SQLite WAL, PostgreSQL selection) and service settings.

The store tests take ``store_url`` (conftest.py) and run on both backends: SQLite in the fast
tier, a fresh database on a real PostgreSQL server in the real tier (``-m real``; ``.ci/run``
starts the server and sets ``FUSIONREC_TEST_POSTGRES_URL``).
"""

from __future__ import annotations

import pytest

from real_support import integrity_errors

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


def test_url_opens_its_backend(store_url):
    store = open_store(store_url)
    kind = PostgresEventStore if store_url.startswith("postgresql://") else SQLiteEventStore
    assert isinstance(store, kind)
    store.close()


def test_write_assigns_ids_and_reads_back(store_url):
    store = open_store(store_url)
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


def test_events_survive_reopening_and_other_connections(store_url):
    store = open_store(store_url)
    store.write(_batch(("u1", "i1"), users=[UserRecord("n1", "hello", {"age": 3}, ("u1",))],
                       items=[ItemRecord("x1", "text", {"genre": "rock"}, ("loud",))]))
    # Another connection sees the committed rows at once (no close needed).
    other = open_store(store_url)
    assert other.count() == 1
    other.close()
    store.close()
    again = open_store(store_url)
    assert again.events()[0].item_id == "i1"
    assert again.users() == [UserRecord("n1", "hello", {"age": 3}, ("u1",))]
    assert again.items() == [ItemRecord("x1", "text", {"genre": "rock"}, ("loud",))]
    again.close()


def test_user_upsert_replaces(store_url):
    store = open_store(store_url)
    store.write(_batch(users=[UserRecord("n1", "a")]))
    store.write(_batch(users=[UserRecord("n1", "b", friends=("u2",))]))
    assert store.users() == [UserRecord("n1", "b", {}, ("u2",))]
    store.close()


def test_failed_batch_is_rolled_back_whole(store_url):
    store = open_store(store_url)
    store.write(_batch(("u1", "i1")))
    bad = WriteBatch((Event("u1", "i2"), Event(None, "i3")))  # NOT NULL violation mid-batch
    with pytest.raises(integrity_errors()):
        store.write(bad)
    assert [e.item_id for e in store.events()] == ["i1"]
    store.write(_batch(("u1", "i4")))  # the store is still usable
    assert store.count() == 2
    store.close()


def test_forget_user_removes_events_record_and_friend_links(store_url):
    store = open_store(store_url)
    store.write(_batch(("gone", "i1"), ("gone", "i2"), ("kept", "i1"),
                       users=[UserRecord("gone", "secret"),
                              UserRecord("kept", None, {}, ("gone", "other"))]))
    assert store.forget_user("gone") == {"events": 2, "user_records": 1, "friend_links": 1}
    assert [(e.user_id, e.item_id) for e in store.events()] == [("kept", "i1")]
    assert store.users() == [UserRecord("kept", None, {}, ("other",))]
    assert store.forget_user("gone") == {"events": 0, "user_records": 0, "friend_links": 0}
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
