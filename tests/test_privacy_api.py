"""``DELETE /v1/users/{user_id}``: the keyed HTTP way to forget a user."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from privacy_support import byte_hits, cache_of, copy_run, files_under, pseudonym

from fusionrec.encoders.config import CACHE_ENV
from fusionrec.serving.app import create_app
from fusionrec.serving.settings import ServeSettings

KEY = "privacy-test-key-0123"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def client(tmp_path_factory, tmp_path, monkeypatch):
    run_dir = copy_run(tmp_path_factory.getbasetemp(), tmp_path / "run")
    monkeypatch.setenv(CACHE_ENV, str(cache_of(run_dir)))
    settings = ServeSettings(run_dir=str(run_dir), api_key=KEY)  # store: RUN_DIR/events.sqlite3
    with TestClient(create_app(settings)) as test_client:
        test_client.run_dir = run_dir
        yield test_client


def test_delete_forgets_a_trained_user_everywhere(client):
    user, friend = pseudonym(5), pseudonym(8)
    assert client.get(f"/v1/users/{user}/recommendations?k=3", headers=AUTH).status_code == 200
    posted = client.post("/v1/events", headers=AUTH, json={
        "users": [{"user_id": friend, "friends": [user]}],
        "events": [{"user_id": user, "item_id": "i2"}, {"user_id": friend, "item_id": "i3"}]})
    assert posted.status_code == 201
    assert client.delete(f"/v1/users/{user}").status_code == 401

    answer = client.delete(f"/v1/users/{user}", headers=AUTH)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["user_id"] == user and body["forgotten"] is True
    assert body["store"] == {"events": 1, "user_records": 0, "friend_links": 1}
    assert body["run"]["removed"]["split_rows"] > 0 and body["run"]["needs_retrain"]
    for path in (f"/v1/users/{user}", f"/v1/users/{user}/recommendations?k=3"):
        assert client.get(path, headers=AUTH).status_code == 404, path
    # The forgotten user's slot is never addressable: "~" is outside the id grammar.
    assert client.get("/v1/users/~forgotten~0", headers=AUTH).status_code == 422
    assert client.delete(f"/v1/users/{user}", headers=AUTH).status_code == 404
    assert user not in client.get(f"/v1/users/{friend}", headers=AUTH).json()["friends"]
    events = client.get(f"/v1/users/{friend}/events", headers=AUTH).json()["events"]
    assert [e["item_id"] for e in events] == ["i3"]
    assert client.get(f"/v1/users/{friend}/recommendations?k=3",
                      headers=AUTH).status_code == 200
    run_dir = client.run_dir
    assert byte_hits(files_under(run_dir, cache_of(run_dir)), {"id": user.encode()}) == []
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["forget"]["users"] == 1


def test_delete_forgets_a_user_known_only_from_posted_events(client):
    created = client.post("/v1/events", headers=AUTH, json={
        "users": [{"user_id": "walk-in-user", "text": "loves jazz"}],
        "events": [{"user_id": "walk-in-user", "item_id": "i1"}]})
    assert created.status_code == 201
    answer = client.delete("/v1/users/walk-in-user", headers=AUTH)
    assert answer.status_code == 200
    assert answer.json()["store"] == {"events": 1, "user_records": 1, "friend_links": 0}
    assert answer.json()["run"] is None
    assert client.get("/v1/users/walk-in-user", headers=AUTH).status_code == 404
    assert byte_hits(files_under(client.run_dir), {"id": b"walk-in-user"}) == []
    assert client.delete("/v1/users/never-seen", headers=AUTH).status_code == 404
