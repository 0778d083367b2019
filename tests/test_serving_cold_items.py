"""A new item posted through ``POST /v1/events`` scores online as the offline model scores the
same item under ``cold-items`` (issue 17, item 8).

The run is a small fusion model (hashing encoder) trained on a cold-items split of the synthetic
world without its KG and reviews (a posted item cannot carry KG edges, and reviews are user-made).
Offline, a test cold item is scored from the split's features: its title, description and
attributes, its interactions vector masked. Online, the same item is posted under a new id with
that text (title on the first line) and those attributes, and scored for the same users.
"""

from __future__ import annotations

import numpy as np
import pytest

from serving_support import AUTH, SMOKE, service_client, trained_run

PARAMS = {**SMOKE, "heads": ["ctr", "retrieval"], "mask_cold_ids": True,
          "sources": ["interactions", "user_attributes", "item_attributes", "item_text",
                      "social"]}
DATA = {"exclude_sources": ["kg", "reviews"]}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_run(tmp_path_factory.getbasetemp(), "cold-items", PARAMS, DATA,
                       name="fusion-cold-items-serving")


@pytest.fixture(scope="module")
def offline(run_dir):
    from fusionrec.training.artifacts import open_run
    from fusionrec.training.run import load_run_split

    config, manifest, model = open_run(run_dir)
    _, split = load_run_split(run_dir, config, manifest)
    return model, split


def posted_item(features, item: int, item_id: str) -> dict:
    """The ``items`` entry of a request that posts ``item``'s content under ``item_id``."""
    fields = features.item_text.fields
    attrs = features.item_attributes.attributes.columns
    return {"item_id": item_id,
            "text": f"{fields['title'][item]}\n{fields['description'][item]}",
            "attributes": {name: str(column[item]) for name, column in attrs.items()}}


def test_new_item_scores_as_the_offline_cold_item(offline, run_dir, tmp_path):
    model, split = offline
    features = split.features
    cold = np.unique(split.test.item)[:3]
    assert not np.isin(cold, split.train.item).any()  # really cold: no training interaction
    users = np.unique(split.train.user)[:6]
    tables = model.vector_tables()
    user_ids = [features.users.ids[u] for u in users]
    with service_client(run_dir, tmp_path, headers=AUTH) as client:
        for item in cold:
            new_id = f"new-{features.items.ids[item]}"
            response = client.post("/v1/events", json={
                "items": [posted_item(features, int(item), new_id)]})
            assert response.status_code == 201, response.text
            body = client.post("/v1/score", json={"pairs": [
                {"user_id": u, "item_id": new_id} for u in user_ids]}).json()
            assert body["head"] == "ctr"
            online = np.array([row["score"] for row in body["scores"]])
            expected = model.score(users, np.full(len(users), item))
            np.testing.assert_allclose(online, expected, rtol=1e-5, atol=1e-5)
            # every source's row, not only the score: the retrieval head's dot product
            # reads the same fused vector (its bias is the model's rule, see docs/serving.md)
            engine = client.app.state.service.engine
            x, mask, _, _ = engine.item_rows(np.array([engine.item_index(new_id)]))
            np.testing.assert_array_equal(mask[0], tables.item_mask[item])
            np.testing.assert_allclose(x[0][mask[0]], tables.item[item][mask[0]], rtol=1e-5,
                                       atol=1e-6)


def test_a_run_saved_without_content_weights_has_no_rule(run_dir):
    """A run saved before the content encoders were kept gives no rule, so the service falls
    back to its re-fitted maps instead of failing."""
    from fusionrec.training.artifacts import load_model

    model = load_model(run_dir)
    assert model.content_item_rows(np.ones(128, np.float32), None) is not None
    model.content_ = {}
    assert model.content_item_rows(np.ones(128, np.float32), None) is None


def test_with_the_retrieval_head_only_the_bias_differs(tmp_path_factory, tmp_path):
    """The default top-K head adds a per-item bias. A new item gets the mean bias of the run's
    items without training interactions; the offline cold item keeps its own. Everything else
    agrees, so online minus offline is exactly that bias difference, for every user."""
    from fusionrec.training.artifacts import open_run
    from fusionrec.training.run import load_run_split

    params = {key: value for key, value in PARAMS.items() if key != "heads"}
    run_dir = trained_run(tmp_path_factory.getbasetemp(), "cold-items", params, DATA,
                          name="fusion-cold-items-retrieval")
    config, manifest, model = open_run(run_dir)
    _, split = load_run_split(run_dir, config, manifest)
    features = split.features
    bias = model.vector_scorer().item_bias
    users = np.unique(split.train.user)[:6]
    cold = np.unique(split.test.item)[:3]
    never = np.setdiff1d(np.arange(features.n_items), model.seen_.indices)
    with service_client(run_dir, tmp_path, headers=AUTH) as client:
        for item in cold:
            new_id = f"new-{features.items.ids[item]}"
            client.post("/v1/events", json={"items": [posted_item(features, int(item), new_id)]})
            body = client.post("/v1/score", json={"pairs": [
                {"user_id": features.users.ids[u], "item_id": new_id} for u in users]}).json()
            assert body["head"] == "retrieval"
            online = np.array([row["score"] for row in body["scores"]])
            offline = model.score(users, np.full(len(users), item))
            np.testing.assert_allclose(online - offline, bias[never].mean() - bias[item],
                                       atol=1e-4)
