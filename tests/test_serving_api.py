"""Every HTTP endpoint through FastAPI's TestClient, including the 4xx answers."""

from __future__ import annotations

import math
import shutil

import pytest
from fastapi.testclient import TestClient

from serving_support import AUTH, service_client, trained_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_run(tmp_path_factory.getbasetemp())


def _client(run_dir, tmp_path, **settings) -> TestClient:
    # Keyed by default (deny-by-default access); anonymous calls go through _anonymous.
    return service_client(run_dir, tmp_path, headers=AUTH,
                          **{"max_text_chars": 100, "max_batch": 20, **settings})


def _anonymous(client: TestClient) -> TestClient:
    """A client without the key on the same (started) app."""
    return TestClient(client.app)


@pytest.fixture(scope="module")
def client(run_dir, tmp_path_factory):
    """Shared by the tests that write nothing (loading an app takes about a second)."""
    with _client(run_dir, tmp_path_factory.mktemp("api")) as test_client:
        yield test_client


@pytest.fixture
def fresh(run_dir, tmp_path):
    """A new app and event store, for tests that write or count."""
    with _client(run_dir, tmp_path) as test_client:
        yield test_client


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["item_id"] for r in response.json()["recommendations"]]


def test_recommendations(client):
    body = client.get("/v1/users/u3/recommendations?k=5").json()
    assert body["user_id"] == "u3" and body["k"] == 5 and len(body["recommendations"]) == 5
    scores = [r["score"] for r in body["recommendations"]]
    assert scores == sorted(scores, reverse=True)
    assert all(r["name"] and r["explanation"] is None for r in body["recommendations"])
    history = {i["item_id"] for i in client.get("/v1/users/u3?limit=1000").json()["history"]}
    assert history and not history & set(_ids(client.get("/v1/users/u3/recommendations?k=50")))
    with_seen = _ids(client.get("/v1/users/u3/recommendations?k=50&exclude_seen=false"))
    assert history & set(with_seen)


def test_recommendations_with_explanations(client):
    recs = client.get("/v1/users/u3/recommendations?k=3&explain=true").json()["recommendations"]
    history = {i["item_id"] for i in client.get("/v1/users/u3?limit=1000").json()["history"]}
    for rec in recs:
        ex = rec["explanation"]
        assert {s["source"] for s in ex["sources"]} >= {"interactions", "item_text"}
        assert all(math.isclose(s["delta"], rec["score"] - s["score_without"], abs_tol=1e-5)
                   for s in ex["sources"])
        assert all(p["from_item"]["item_id"] in history for p in ex["kg_paths"])
        assert all(a["n_liked"] >= 1 for a in ex["shared_attributes"])
    assert any(r["explanation"]["kg_paths"] for r in recs)
    assert any(r["explanation"]["shared_attributes"] for r in recs)


@pytest.mark.parametrize("query, status, message", [
    ("k=0", 422, "greater than or equal to 1"),
    ("k=51", 422, "above the limit of 50"),
    ("k=ten", 422, "valid integer"),
    ("explain=perhaps", 422, "valid boolean"),
])
def test_recommendations_bad_queries(client, query, status, message):
    response = client.get(f"/v1/users/u3/recommendations?{query}")
    assert response.status_code == status and message in response.text


def test_unknown_ids_are_404(client):
    for path in ("/v1/users/nobody/recommendations", "/v1/users/nobody",
                 "/v1/items/nothing/similar"):
        response = client.get(path)
        assert response.status_code == 404 and "unknown" in response.json()["detail"]
    response = client.get("/v1/users/nobody/events", headers=AUTH)
    assert response.status_code == 404


def test_score(client):
    body = client.post("/v1/score", json={"pairs": [{"user_id": "u3", "item_id": "i10"},
                                                    {"user_id": "u4", "item_id": "i2"}]}).json()
    assert body["head"] == "retrieval" and len(body["scores"]) == 2
    for row in body["scores"]:
        assert row["probability"] == pytest.approx(1 / (1 + math.exp(-row["score"])))
    top = client.get("/v1/users/u3/recommendations?k=1").json()["recommendations"][0]
    again = client.post("/v1/score", json={"pairs": [{"user_id": "u3",
                                                      "item_id": top["item_id"]}]}).json()
    assert again["scores"][0]["score"] == pytest.approx(top["score"], rel=1e-5)


@pytest.mark.parametrize("payload, message", [
    ({"pairs": []}, "at least 1 item"),
    ({"pairs": [{"user_id": 3, "item_id": "i1"}]}, "valid string"),
    ({"pairs": [{"user_id": "u3"}]}, "Field required"),
    ({"pairs": [{"user_id": "u3", "item_id": "i1", "extra": 1}]}, "Extra inputs"),
])
def test_score_rejects(client, payload, message):
    response = client.post("/v1/score", json=payload)
    assert response.status_code == 422 and message in response.text


def test_score_batch_limit(client):
    pairs = [{"user_id": "u1", "item_id": "i1"}] * 21
    assert client.post("/v1/score", json={"pairs": pairs}).status_code == 413


def test_similar(client):
    body = client.get("/v1/items/i0/similar?k=4").json()
    ids = [s["item_id"] for s in body["similar"]]
    assert len(ids) == 4 and "i0" not in ids
    assert all(-1.0 <= s["score"] <= 1.0 for s in body["similar"])
    assert client.get("/v1/items/i0/similar?k=100").status_code == 422


def test_events_need_the_key(client):
    payload = {"events": [{"user_id": "u3", "item_id": "i10"}]}
    anonymous = _anonymous(client)
    assert anonymous.post("/v1/events", json=payload).status_code == 401
    wrong = {"Authorization": "Bearer not-the-key-at-all"}
    response = anonymous.post("/v1/events", json=payload, headers=wrong)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert anonymous.get("/v1/users/u3/events").status_code == 401
    assert anonymous.post("/v1/admin/reload").status_code == 401
    assert client.app.state.service.store.count() == 0


def test_writes_refused_without_a_configured_key(run_dir, tmp_path):
    with _client(run_dir, tmp_path, api_key=None) as client:
        response = client.post("/v1/events", json={"events": [{"user_id": "u3",
                                                                 "item_id": "i1"}]},
                               headers=AUTH)
        assert response.status_code == 403 and "FUSIONREC_API_KEY" in response.text


def test_events_are_stored_and_change_recommendations(fresh):
    before = _ids(fresh.get("/v1/users/u3/recommendations?k=10"))
    response = fresh.post("/v1/events", headers=AUTH, json={"events": [
        {"user_id": "u3", "item_id": before[0], "kind": "like"},
        {"user_id": "u3", "item_id": before[1], "kind": "play", "value": 12,
         "timestamp": 1700000000}]})
    assert response.status_code == 201
    assert response.json()["accepted"] == 2 and response.json()["event_ids"] == [1, 2]
    store = fresh.app.state.service.store
    assert [e.item_id for e in store.events()] == before[:2]  # persisted before the answer
    after = _ids(fresh.get("/v1/users/u3/recommendations?k=10"))
    assert before[0] not in after and before[1] not in after
    listed = fresh.get("/v1/users/u3/events", headers=AUTH).json()["events"]
    assert [(e["item_id"], e["kind"], e["value"]) for e in listed] == [
        (before[0], "like", None), (before[1], "play", 12.0)]
    assert listed[1]["timestamp"] == 1700000000
    profile = fresh.get("/v1/users/u3?limit=1000").json()
    assert {before[0], before[1]} <= {i["item_id"] for i in profile["history"]}


def test_new_user_and_item(fresh):
    response = fresh.post("/v1/events", headers=AUTH, json={
        "users": [{"user_id": "newbie", "text": "smooth jazz saxophone",
                   "attributes": {"region": "north"}, "friends": ["u1", "u2"]}],
        "items": [{"item_id": "brand-new", "text": "Saxophone Lounge", "tags": ["smooth"],
                   "attributes": {"category": "jazz"}}],
        "events": [{"user_id": "newbie", "item_id": "brand-new"}]})
    assert response.status_code == 201, response.text
    assert response.json()["users"] == ["newbie"] and response.json()["items"] == ["brand-new"]
    recs = fresh.get("/v1/users/newbie/recommendations?k=5&explain=true").json()
    assert len(recs["recommendations"]) == 5
    assert "brand-new" not in [r["item_id"] for r in recs["recommendations"]]
    profile = fresh.get("/v1/users/newbie").json()
    assert profile["new"] is True and set(profile["friends"]) == {"u1", "u2"}
    assert [i["item_id"] for i in profile["history"]] == ["brand-new"]
    similar = fresh.get("/v1/items/brand-new/similar?k=3")
    assert similar.status_code == 200 and len(similar.json()["similar"]) == 3
    assert "newbie" in fresh.get("/v1/users/u1").json()["friends"]


@pytest.mark.parametrize("payload, status, message", [
    ({}, 422, "nothing to record"),
    ({"events": [{"user_id": "u3", "item_id": "zzz"}]}, 404, "unknown item 'zzz'"),
    ({"events": [{"user_id": "ghost", "item_id": "i1"}]}, 404, "unknown user 'ghost'"),
    ({"events": [{"user_id": "u3", "item_id": "i1", "kind": "hug"}]}, 422, "literal_error"),
    ({"events": [{"user_id": "u3", "item_id": "i1", "value": "loud"}]}, 422, "valid number"),
    ({"events": [{"user_id": "u3", "item_id": "i1", "kind": "rating"}]}, 422, "needs a value"),
    ({"events": [{"user_id": "", "item_id": "i1"}]}, 422, "at least 1 character"),
    ({"events": [{"user_id": "a/b", "item_id": "i1"}]}, 422, "should match pattern"),
    ({"users": [{"user_id": "x", "friends": ["u1/../u2"]}]}, 422, "should match pattern"),
    ({"events": [{"user_id": "u3", "item_id": "i1", "kind": "rating", "value": 99}]}, 422,
     "outside this run's rating scale"),
    ({"events": [{"user_id": "u3", "item_id": "i1", "kind": "rating", "value": -5}]}, 422,
     "outside this run's rating scale"),
    ({"events": [{"user_id": "u3", "item_id": "i1", "timestamp": 1e300}]}, 422,
     "less than or equal to 4102444800"),
    ({"events": [{"user_id": "u3", "item_id": "i1", "kind": "play", "value": -3}]}, 422,
     "cannot be negative"),
    ({"users": [{"user_id": "x", "text": "t" * 101}]}, 422, "the limit is 100"),
    ({"users": [{"user_id": "x", "attributes": {"height": "tall"}}]}, 422,
     "unknown attribute 'height'"),
    ({"items": [{"item_id": "x", "attributes": {"category": 5}}]}, 422, "takes a string"),
    ({"events": [{"user_id": "u3", "item_id": "i1"}] * 21}, 413, "the limit is 20"),
    ([1, 2], 422, "valid dictionary"),
])
def test_events_rejected(client, payload, status, message):
    response = client.post("/v1/events", json=payload, headers=AUTH)
    assert response.status_code == status and message in response.text, response.text
    assert client.app.state.service.store.count() == 0  # nothing half-written


def test_malformed_json_is_422(client):
    response = client.post("/v1/events", content=b"{not json", headers={
        **AUTH, "Content-Type": "application/json"})
    assert response.status_code == 422


def test_open_reads_is_an_explicit_setting(run_dir, tmp_path):
    with _client(run_dir, tmp_path, open_reads=True) as client:
        anonymous = _anonymous(client)
        for path in ("/v1/users/u3/recommendations", "/v1/users", "/v1/users/u3",
                     "/v1/items/i0/similar"):
            assert anonymous.get(path).status_code == 200, path
        score = {"pairs": [{"user_id": "u3", "item_id": "i1"}]}
        assert anonymous.post("/v1/score", json=score).status_code == 200
        # The raw event log, writes and admin stay keyed even with open reads.
        assert anonymous.get("/v1/users/u3/events").status_code == 401
        assert anonymous.post("/v1/events", json={"events": [
            {"user_id": "u3", "item_id": "i1"}]}).status_code == 401
        assert anonymous.delete("/v1/users/u3").status_code == 401


def test_health_ready_metrics_docs_and_page(fresh):
    assert fresh.get("/healthz").json() == {"status": "ok"}
    ready = fresh.get("/readyz").json()
    assert ready["status"] == "ready" and ready["engine"]["model"] == "fusion"
    assert ready["engine"]["items"] == 200
    fresh.get("/v1/users/u3/recommendations")
    fresh.get("/v1/users/nobody/recommendations")
    text = fresh.get("/metrics").text
    assert ('fusionrec_http_requests_total{method="GET",route="/v1/users/{user_id}/'
            'recommendations",status="200"} 1.0') in text
    assert 'status="404"' in text and "fusionrec_http_request_seconds_bucket" in text
    paths = fresh.get("/openapi.json").json()["paths"]
    assert {"/v1/users/{user_id}/recommendations", "/v1/score", "/v1/items/{item_id}/similar",
            "/v1/events", "/v1/users/{user_id}/events", "/v1/admin/reload"} <= set(paths)
    page = fresh.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/v1/events" in page.text and 'class="like"' not in page.text  # built by script


def test_reload_swaps_the_engine_and_keeps_recorded_state(fresh, run_dir, tmp_path):
    fresh.post("/v1/events", headers=AUTH, json={"users": [{"user_id": "keep-me"}],
                                                   "events": [{"user_id": "keep-me",
                                                               "item_id": "i5"}]})
    old = fresh.app.state.service.engine
    response = fresh.post("/v1/admin/reload", headers=AUTH)
    assert response.status_code == 200 and response.json()["replayed_events"] == 1
    assert fresh.app.state.service.engine is not old
    profile = fresh.get("/v1/users/keep-me").json()
    assert [i["item_id"] for i in profile["history"]] == ["i5"]
    # Another run folder (a copy, as `fusionrec retrain --out` would write).
    other = tmp_path / "run-copy"
    shutil.copytree(run_dir, other)
    response = fresh.post("/v1/admin/reload", headers=AUTH, json={"run_dir": str(other)})
    assert response.status_code == 200 and response.json()["run_dir"] == str(other)
    assert fresh.get("/readyz").json()["run_dir"] == str(other)
    missing = fresh.post("/v1/admin/reload", headers=AUTH, json={"run_dir": str(tmp_path / "x")})
    assert missing.status_code == 404
    (other / "model.json").write_text("{}")  # tampered: refused, the old model keeps serving
    bad = fresh.post("/v1/admin/reload", headers=AUTH, json={"run_dir": str(other)})
    assert bad.status_code == 422 and "modified after training" in bad.text
    assert fresh.get("/v1/users/keep-me/recommendations").status_code == 200
    assert 'fusionrec_model_reloads_total{outcome="failed"} 1.0' in fresh.get("/metrics").text
