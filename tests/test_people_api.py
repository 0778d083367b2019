"""``GET /v1/users/{id}/people`` through FastAPI's TestClient: access, exclusions, the
evidence behind each person, and recorded friendships."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving_support import AUTH, service_client, trained_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_run(tmp_path_factory.getbasetemp())


def _client(run_dir, tmp_path, **settings) -> TestClient:
    return service_client(run_dir, tmp_path, **settings)


@pytest.fixture
def client(run_dir, tmp_path):
    with _client(run_dir, tmp_path) as test_client:
        yield test_client


def _friends(client, user: str) -> set[str]:
    return set(client.get(f"/v1/users/{user}", headers=AUTH).json()["friends"])


def _history(client, user: str) -> set[str]:
    found = client.get(f"/v1/users/{user}?limit=10000", headers=AUTH).json()["history"]
    return {item["item_id"] for item in found}


def test_people_need_the_key_even_with_open_reads(run_dir, tmp_path):
    with _client(run_dir, tmp_path, open_reads=True) as client:
        assert client.get("/v1/users/u3/people").status_code == 401
        wrong = {"Authorization": "Bearer not-the-key"}
        assert client.get("/v1/users/u3/people", headers=wrong).status_code == 401
    with _client(run_dir, tmp_path / "nokey", api_key=None) as client:
        assert client.get("/v1/users/u3/people", headers=AUTH).status_code == 403


def test_people_exclude_self_and_friends_and_explain_themselves(client):
    user = "u3"
    response = client.get(f"/v1/users/{user}/people?k=10", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_id"] == user and body["k"] == 10 and "adamic-adar" in body["method"]
    people = body["people"]
    assert len(people) == 10
    friends = _friends(client, user)
    assert friends, "the synthetic world gives u3 friends"
    ids = [p["user_id"] for p in people]
    assert user not in ids and not set(ids) & friends and len(set(ids)) == len(ids)
    scores = [p["score"] for p in people]
    assert scores == sorted(scores, reverse=True)
    mine = _history(client, user)
    for person in people:
        theirs = _friends(client, person["user_id"])
        assert set(person["mutual_friends"]) == friends & theirs  # fewer than the cap here
        assert person["n_mutual_friends"] == len(friends & theirs)
        shared = {i["item_id"] for i in person["shared_items"]}
        assert shared <= mine & _history(client, person["user_id"])
        assert person["n_shared_items"] == len(mine & _history(client, person["user_id"]))
        for attribute in person["shared_attributes"]:
            assert "=" in attribute
    # a user with friends is offered friends of friends (the Adamic–Adar part)
    assert any(p["n_mutual_friends"] for p in people)


def test_people_bad_requests(client):
    assert client.get("/v1/users/ghost/people", headers=AUTH).status_code == 404
    assert client.get("/v1/users/u3/people?k=0", headers=AUTH).status_code == 422
    assert client.get("/v1/users/u3/people?k=51", headers=AUTH).status_code == 422
    assert client.get("/v1/users/u3/people?k=x", headers=AUTH).status_code == 422
    # the service's id grammar applies here too
    assert client.get("/v1/users/" + "u" * 1000 + "/people", headers=AUTH).status_code == 422


def test_a_recorded_friendship_leaves_the_list_and_becomes_evidence(client):
    user = "u3"
    first = client.get(f"/v1/users/{user}/people?k=5", headers=AUTH).json()["people"]
    top = first[0]["user_id"]
    response = client.post("/v1/events", headers=AUTH, json={
        "users": [{"user_id": user, "friends": [top]}]})
    assert response.status_code == 201, response.text
    after = client.get(f"/v1/users/{user}/people?k=50", headers=AUTH).json()["people"]
    assert top not in [p["user_id"] for p in after]
    # the new friend's friends now share ``top`` with the user
    via_top = [p for p in after if top in p["mutual_friends"]]
    assert via_top and all(p["user_id"] in _friends(client, top) for p in via_top)
