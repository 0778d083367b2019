"""``fusionrec serve`` on LightGCN and BPR-MF runs, through the servable contract: the
conformance of every servable model, then recommendations, recorded events and forgetting a
user over HTTP (TestClient), on small synthetic runs trained through ``train_run``."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from fastapi.testclient import TestClient

from serving_support import API_KEY, trained_run

from fusionrec.models.servable import PrivateHead, Servable, VectorScorer
from fusionrec.serving.app import create_app
from fusionrec.serving.settings import ServeSettings
from fusionrec.training.artifacts import open_run

AUTH = {"Authorization": f"Bearer {API_KEY}"}
PLAIN = {"lightgcn": {"embedding_dim": 8, "layers": 2}, "bpr-mf": {"embedding_dim": 8}}


def _train(base, model: str):
    from fusionrec.config import RunConfig
    from fusionrec.evaluation.runs import train_run

    run_dir = base / f"servable-{model}"
    if not (run_dir / "manifest.json").is_file():
        config = RunConfig.from_dict({
            "data": {"preset": "synthetic"}, "protocol": {"name": "topk-random", "seed": 0},
            "model": {"name": model, "params": PLAIN[model]},
            "trainer": {"epochs": 4, "batch_size": 512, "lr": 0.01, "seed": 0,
                        "num_threads": 1},
            "evaluation": {"ks": [10]}})
        train_run(config, run_dir, progress=False)
    return run_dir


@pytest.fixture(scope="module", params=sorted(PLAIN))
def plain_run(request, tmp_path_factory):
    return _train(tmp_path_factory.getbasetemp(), request.param)


@pytest.fixture
def client(plain_run, tmp_path):
    """A service over a copy of the run (forgetting rewrites the folder) and a fresh store."""
    run_dir = tmp_path / "run"
    shutil.copytree(plain_run, run_dir)
    settings = ServeSettings(run_dir=str(run_dir), api_key=API_KEY,
                             database_url=str(tmp_path / "events.sqlite3"))
    with TestClient(create_app(settings), headers=AUTH) as test_client:
        test_client.run_dir = run_dir
        yield test_client


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["item_id"] for r in response.json()["recommendations"]]


def test_every_servable_model_conforms(plain_run, tmp_path_factory):
    """fusion, lightgcn and bpr-mf runs load as ``Servable``; their vector tables and scorer
    give back the model's own scores."""
    fusion = trained_run(tmp_path_factory.getbasetemp())
    for run_dir in (plain_run, fusion):
        _, _, model = open_run(run_dir)
        assert isinstance(model, Servable), run_dir
        tables, scorer = model.vector_tables(), model.vector_scorer()
        assert isinstance(scorer, VectorScorer)
        n_users, n_items = len(tables.user), len(tables.item)
        assert tables.user.dtype == tables.item.dtype == np.float32
        assert tables.user.shape[1] == tables.item.shape[1] == len(tables.sources)
        assert tables.seen.n_users == n_users
        users, items = np.arange(n_users) % 7, np.arange(n_users) % n_items
        u = scorer.fuse("user", tables.user[users], tables.user_mask[users])
        i = scorer.fuse("item", tables.item[items], tables.item_mask[items])
        bias = (scorer.item_bias[items] if scorer.item_bias is not None
                else np.zeros(len(items), np.float32))
        if not scorer.has_ctr:
            np.testing.assert_allclose(scorer.row_scores(u, i, bias),
                                       model.score(users, items), rtol=1e-4, atol=1e-4)
        fusion_model = model.name == "fusion"
        # declared, not probed: only fusion places new items from content and has a DP head
        assert model.serving.content_items == model.serving.private_head == fusion_model
        assert isinstance(model, PrivateHead) == fusion_model


def test_recommendations_are_the_models_own(client):
    _, _, model = open_run(client.run_dir)
    users = json.loads((client.run_dir / "users.json").read_text())
    items = json.loads((client.run_dir / "items.json").read_text())
    ids = _ids(client.get("/v1/users/u3/recommendations?k=5"))
    expected, _ = model.recommend(np.array([users.index("u3")]), 5)
    assert ids == [items[i] for i in expected[0]]
    assert TestClient(client.app).get("/v1/users/u3/recommendations").status_code == 401
    engine = client.get("/readyz").json()["engine"]
    assert engine["model"] == model.name and engine["sources"] == ["interactions"]
    explained = client.get("/v1/users/u3/recommendations?k=3&explain=true").json()
    for rec in explained["recommendations"]:  # the one source carries the whole score
        (source,) = rec["explanation"]["sources"]
        assert source["source"] == "interactions"
        assert source["delta"] == pytest.approx(rec["score"] - source["score_without"],
                                                abs=1e-5)


def test_events_are_recorded_excluded_and_move_the_user(client):
    before = _ids(client.get("/v1/users/u3/recommendations?k=10"))
    probe = {"pairs": [{"user_id": "u3", "item_id": before[5]}]}
    score_before = client.post("/v1/score", json=probe).json()["scores"][0]["score"]
    response = client.post("/v1/events", json={"events": [
        {"user_id": "u3", "item_id": before[0], "kind": "like"},
        {"user_id": "u3", "item_id": before[1], "kind": "like"}]})
    assert response.status_code == 201 and response.json()["accepted"] == 2
    assert [e.item_id for e in client.app.state.service.store.events()] == before[:2]
    after = _ids(client.get("/v1/users/u3/recommendations?k=10"))
    assert before[0] not in after and before[1] not in after
    score_after = client.post("/v1/score", json=probe).json()["scores"][0]["score"]
    assert score_after != pytest.approx(score_before, abs=1e-6)  # folded in: the user moved
    listed = client.get("/v1/users/u3/events").json()["events"]
    assert [e["item_id"] for e in listed] == before[:2]


def test_a_new_user_folds_in_from_their_events(client):
    liked = ["i1", "i2", "i3"]
    response = client.post("/v1/events", json={
        "users": [{"user_id": "walk-in"}],
        "events": [{"user_id": "walk-in", "item_id": i} for i in liked]})
    assert response.status_code == 201, response.text
    ids = _ids(client.get("/v1/users/walk-in/recommendations?k=5"))
    assert len(ids) == 5 and not set(ids) & set(liked)


def test_a_new_item_without_interactions_cannot_be_placed(client):
    response = client.post("/v1/events", json={
        "items": [{"item_id": "brand-new", "text": "a record nobody has heard yet"}]})
    assert response.status_code == 201, response.text
    similar = client.get("/v1/items/brand-new/similar?k=3")
    assert similar.status_code == 409 and "retrain" in similar.text
    score = client.post("/v1/score", json={"pairs": [{"user_id": "u3",
                                                      "item_id": "brand-new"}]})
    assert score.status_code == 409
    assert "brand-new" not in _ids(client.get("/v1/users/u3/recommendations?k=50"))


def test_delete_forgets_the_user_in_the_run_and_the_store(client):
    run_dir = client.run_dir
    users = json.loads((run_dir / "users.json").read_text())
    index = users.index("u5")
    _, _, model = open_run(run_dir)
    assert np.abs(model.vector_tables().user[index]).sum() > 0
    posted = client.post("/v1/events", json={"events": [{"user_id": "u5", "item_id": "i2"}]})
    assert posted.status_code == 201

    answer = client.delete("/v1/users/u5")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["store"]["events"] == 1 and body["run"]["removed"]["split_rows"] > 0
    assert body["run"]["needs_retrain"] and not body["run"]["retrained"]
    assert client.get("/v1/users/u5/recommendations?k=3").status_code == 404
    assert client.app.state.service.store.count() == 0
    # the folder reloads (checksums rewritten), with the user's slot tombstoned and zeroed
    _, manifest, reloaded = open_run(run_dir)
    assert manifest["forget"]["users"] == 1
    assert json.loads((run_dir / "users.json").read_text())[index] != "u5"
    tables = reloaded.vector_tables()
    assert np.abs(tables.user[index]).sum() == 0 and not len(tables.seen.items_of(index))
    assert _ids(client.get("/v1/users/u3/recommendations?k=3"))  # the service still serves
    people = client.get("/v1/users/u3/people?k=3")  # by taste (fused vectors) and friends
    assert people.status_code == 200, people.text
    assert "u5" not in {p["user_id"] for p in people.json()["people"]}


def test_retrain_warm_starts_a_plain_model_by_raw_id(plain_run, tmp_path):
    """Retraining goes through the contract: the parent's checkpoint is checked by the model,
    every known user's and item's row is copied, the new user's row is fresh."""
    from fusionrec.continual.retrain import RetrainConfig, retrain
    from fusionrec.evaluation.evaluate import evaluate
    from fusionrec.continual.warm_start import WarmStartError, read_warm_weights
    from fusionrec.data.events import Event, UserRecord, WriteBatch, open_store
    from fusionrec.training.run import load_run_split

    store = open_store(str(tmp_path / "events.sqlite3"))
    likes = [Event(f"u{u}", f"i{i}", "like") for u in range(30) for i in (u + 1, u + 7)]
    store.write(WriteBatch(tuple(likes + [Event("newbie", "i4", "like")]),
                           (UserRecord("newbie"),)))
    result = retrain(plain_run, store, tmp_path / "out", RetrainConfig(epochs=1),
                     evaluate=evaluate, progress=False)
    store.close()
    config, manifest, parent = open_run(plain_run)
    _, split = load_run_split(plain_run, config, manifest)
    n_users, n_items = split.features.n_users, split.features.n_items
    rows = result.report["warm_start"]
    known = {"lightgcn": n_users + n_items, "bpr-mf": n_users + 2 * n_items}[parent.name]
    assert rows["copied_rows"] == known and rows["fresh_rows"] == 1
    assert "newbie" in json.loads((tmp_path / "out" / "users.json").read_text())
    _, _, other = open_run(tmp_path / "out")  # one more user: not this checkpoint's model
    with pytest.raises(WarmStartError, match="does not belong"):
        read_warm_weights(plain_run, other, split.features)


def test_the_dp_head_refuses_a_model_without_one(plain_run):
    from fusionrec.privacy.dp import DPError, fit_private_head

    _, _, model = open_run(plain_run)
    assert not model.serving.private_head
    with pytest.raises(DPError, match="fusion"):
        fit_private_head(model, split=None)


def test_a_fusion_item_posted_without_anything_to_place_it_by_is_not_ranked(
        tmp_path_factory, tmp_path):
    """A new item the model has no vector for was ranked at the mean item bias; it is now
    left out of recommendations and its score is a 409, as ``similar`` already was."""
    run_dir = trained_run(tmp_path_factory.getbasetemp())
    n = len(json.loads((run_dir / "items.json").read_text()))
    settings = ServeSettings(run_dir=str(run_dir), api_key=API_KEY, max_k=n + 1,
                             database_url=str(tmp_path / "events.sqlite3"))
    with TestClient(create_app(settings), headers=AUTH) as client:
        assert client.post("/v1/events", json={"items": [{"item_id": "bare"}]}
                           ).status_code == 201
        ranked = _ids(client.get(f"/v1/users/u3/recommendations?k={n + 1}"))  # every item
        assert len(ranked) > n // 2 and "bare" not in ranked
        score = client.post("/v1/score", json={"pairs": [{"user_id": "u3",
                                                          "item_id": "bare"}]})
        assert score.status_code == 409 and "no text it can encode" in score.text


def test_serve_preflight_takes_servable_runs_and_refuses_others(plain_run, tmp_path):
    """The CLI checks the run's model class before uvicorn starts: LightGCN and BPR-MF runs
    pass (they were refused as "not fusion"), a model without the contract gets one line."""
    from fusionrec.cli.main import UserError
    from fusionrec.cli.serve_cmd import _preflight
    from fusionrec.models.fusion.links import FusionLinks

    db = str(tmp_path / "events.sqlite3")
    _preflight(ServeSettings(run_dir=str(plain_run), api_key=API_KEY, database_url=db))
    other = tmp_path / "popularity"
    shutil.copytree(plain_run, other)
    meta = json.loads((other / "model.json").read_text())
    (other / "model.json").write_text(json.dumps({**meta, "name": "popularity"}))
    from fusionrec.training import artifacts

    manifest = json.loads((other / artifacts.MANIFEST_FILE).read_text())
    manifest["files"]["model.json"] = artifacts.file_sha256(other / "model.json")
    (other / artifacts.MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="serves runs of bpr-mf, fusion, lightgcn"):
        _preflight(ServeSettings(run_dir=str(other), api_key=API_KEY, database_url=db))
    # a link model ranks people: it declares itself out of the contract
    assert not isinstance(FusionLinks(), Servable)
