"""The serving engine on a trained fusion run: exact retrieval, fold-in, cold start."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from serving_support import SMOKE, trained_run

from fusionrec.serving.engine import Engine, RequestError, load_run
from fusionrec.serving.store import Event, ItemRecord, UserRecord, WriteBatch
from fusionrec.serving.updates import Updater


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    torch.set_num_threads(1)
    return load_run(trained_run(tmp_path_factory.getbasetemp()))


@pytest.fixture
def engine(run):
    return Engine(run)  # fresh per test: writes change it


def _category(run) -> np.ndarray:
    return np.asarray(run.dataset.item_attributes.attributes.columns["category"])


def test_recommend_matches_the_model_exactly(run, engine):
    users = np.arange(0, run.dataset.n_users, 37)
    for exclude in (True, False):
        expected, scores = run.model.recommend(users, k=10, exclude_seen=exclude)
        for row, user in enumerate(users):
            got, got_scores = engine.recommend(int(user), 10, exclude)
            np.testing.assert_array_equal(got, expected[row])
            np.testing.assert_allclose(got_scores, scores[row], rtol=1e-4, atol=1e-5)


def test_score_and_similar(run, engine):
    users, items = np.array([0, 5, 9]), np.array([3, 4, 100])
    np.testing.assert_allclose(engine.score(users, items), run.model.score(users, items),
                               rtol=1e-4, atol=1e-5)
    ids, sims = engine.similar(7, 5)
    assert 7 not in ids and len(ids) == 5 and np.all(np.diff(sims) <= 1e-6)
    fused = engine.item_fused
    cosine = fused @ fused[7] / (np.linalg.norm(fused, axis=1) * np.linalg.norm(fused[7]))
    cosine[7] = -np.inf
    np.testing.assert_array_equal(ids, np.argsort(-cosine, kind="stable")[:5])


def test_foldin_is_exact_for_profile_sources(engine):
    assert engine.foldin.fit_r2["item_text"] > 0.999 and engine.foldin.fit_r2["kg"] > 0.999
    user = 4
    seen = engine.seen.items_of(user)
    new = np.setdiff1d(np.arange(20), seen)[:3]
    engine.updater.apply(WriteBatch(tuple(Event(engine.users.ids[user], engine.items.ids[i])
                                          for i in new)))
    s = engine.sources.index("item_text")
    view = engine.user_view(user)
    # The text source's user vector is the mean of the user's items' text vectors.
    expected = engine.item_x[np.union1d(seen, new), s].mean(0)
    np.testing.assert_allclose(view.state.x[s], expected, atol=2e-3)
    assert set(new) <= set(view.history) and set(new) <= set(view.excluded)


def test_likes_move_recommendations_towards_what_was_liked(run, engine):
    category = _category(run)
    user = 11
    before, _ = engine.recommend(user, 20)
    counts = {c: int(np.sum(category[before] == c)) for c in np.unique(category)}
    target = min(counts, key=counts.get)  # the genre the user is least recommended
    seen = set(engine.seen.items_of(user).tolist())
    liked = [i for i in np.flatnonzero(category == target) if i not in seen][:10]
    engine.updater.apply(WriteBatch(tuple(Event(f"u{user}", f"i{i}", "like") for i in liked)))
    after, _ = engine.recommend(user, 20)
    assert not set(liked) & set(after.tolist())  # liked items are now excluded
    assert np.sum(category[after] == target) > counts[target] + 2


def test_dislikes_and_low_ratings_only_exclude(engine):
    user = 2
    top, _ = engine.recommend(user, 3)
    engine.updater.apply(WriteBatch((Event("u2", f"i{top[0]}", "dislike"),
                                     Event("u2", f"i{top[1]}", "rating", 1.0))))
    view = engine.user_view(user)
    assert top[0] not in view.history and top[0] in view.excluded
    assert top[2] == engine.recommend(user, 1)[0][0]


def test_text_only_user_gets_recommendations_about_their_text(run, engine):
    category = _category(run)
    engine.updater.apply(WriteBatch(users=(UserRecord(
        "fan", "smooth jazz saxophone bebop trumpet lounge"),)))
    ids, _ = engine.recommend(engine.user_index("fan"), 10)
    assert np.mean(category[ids] == "jazz") >= 0.7


def test_friends_only_user_inherits_their_friends_taste(engine):
    twin = 7
    friends = tuple(engine.users.ids[f] for f in engine.updater.friends_of(twin))
    assert friends
    engine.updater.apply(WriteBatch(users=(UserRecord("twin", friends=friends),)))
    new = engine.user_index("twin")
    assert engine.users.is_new(new)
    ours, _ = engine.recommend(new, 20, exclude_seen=False)
    theirs = set()
    for f in engine.updater.friends_of(new):
        theirs |= set(engine.recommend(int(f), 20, exclude_seen=False)[0].tolist())
    assert len(set(ours.tolist()) & theirs) >= 12  # close to what the friends are shown
    assert engine.user_index("twin") in engine.updater.friends_of(
        engine.user_index(friends[0]))  # friendship recorded both ways


def test_new_user_likes_fold_in_from_zero(run, engine):
    category = _category(run)
    metal = [f"i{i}" for i in np.flatnonzero(category == "metal")[:5]]
    engine.updater.apply(WriteBatch(tuple(Event("headbanger", i) for i in metal),
                                    users=(UserRecord("headbanger"),)))
    ids, _ = engine.recommend(engine.user_index("headbanger"), 10)
    assert np.mean(category[ids] == "metal") >= 0.7


def test_attribute_only_user_uses_attribute_embedding(engine):
    slot = engine.sources.index("user_attributes")
    engine.updater.apply(WriteBatch(users=(UserRecord("a1", attributes={"region": "north",
                                                                        "age_band": "55+"}),)))
    view = engine.user_view(engine.user_index("a1"))
    assert view.state.mask[slot]
    # Users with exactly these attributes carry (nearly) the same attribute vector.
    columns = engine.run.features.user_attributes.columns
    same = np.flatnonzero((np.asarray(columns["region"]) == "north")
                          & (np.asarray(columns["age_band"]) == "55+"))
    np.testing.assert_allclose(view.state.x[slot], engine.user_x[same[0], slot], atol=1e-3)


def test_new_item_is_indexed_and_close_to_its_genre(run, engine):
    category = _category(run)
    engine.updater.apply(WriteBatch(items=(ItemRecord(
        "fresh", "Bebop Saxophone Lounge smooth jazz", {"category": "jazz"},
        ("smooth", "cool")),)))
    item = engine.item_index("fresh")
    assert engine.items.is_new(item) and engine.items.names[item].startswith("Bebop")
    ids, _ = engine.similar(item, 10)
    assert np.mean(category[ids[ids < len(category)]] == "jazz") >= 0.6
    # A jazz lover can be recommended the new item, and can like it.
    engine.updater.apply(WriteBatch((Event("u3", "fresh"),)))
    assert item in engine.user_view(3).history
    top, scores = engine.recommend(3, 200, exclude_seen=False)
    assert item in top
    at = list(top).index(item)
    assert engine.score(np.array([3]), np.array([item]))[0] == pytest.approx(scores[at])


def test_validation_messages(engine):
    updater: Updater = engine.updater
    for batch, message in [
        (WriteBatch((Event("nobody", "i1"),)), "unknown user 'nobody'"),
        (WriteBatch((Event("u1", "nothing"),)), "unknown item 'nothing'"),
        (WriteBatch(users=(UserRecord("n", friends=("ghost",)),)), "unknown friend 'ghost'"),
    ]:  # an unknown id is 404, as in a path
        with pytest.raises(RequestError, match=message) as error:
            updater.validate(batch, max_text_chars=20)
        assert error.value.status == 404
    cases = [
        (WriteBatch(users=(UserRecord("n", friends=("n",)),)), "befriend themselves"),
        (WriteBatch((Event("u1", "i1", "rating", 99.0),)), "outside this run's rating scale"),
        (WriteBatch((Event("u1", "i1", "rating", -5.0),)), "rating scale 1..5"),
        (WriteBatch(users=(UserRecord("n", attributes={"shoe": "x"}),)), "unknown attribute"),
        (WriteBatch(users=(UserRecord("n", attributes={"region": 3}),)), "takes a string"),
        (WriteBatch(users=(UserRecord("n", "x" * 50),)), "text has 50 characters"),
        (WriteBatch(items=(ItemRecord("i1", "x"),)), "cannot be redefined"),
    ]
    for batch, message in cases:
        with pytest.raises(RequestError, match=message) as error:
            updater.validate(batch, max_text_chars=20)
        assert error.value.status == 422
    # A new user and item introduced in the same batch as their event are fine.
    updater.validate(WriteBatch((Event("n", "new"),), (UserRecord("n"),), (ItemRecord("new"),)),
                     20)


def test_rating_scale_is_the_datasets_own():
    from types import SimpleNamespace

    from fusionrec.serving.engine import DEFAULT_RATING_SCALE, rating_scale

    rated = SimpleNamespace(interactions=SimpleNamespace(rating=np.array([0.5, 2.0, 4.0])))
    assert rating_scale(rated) == (0.5, 4.0)  # the user: 0.5..4, not 1..5
    unrated = SimpleNamespace(interactions=SimpleNamespace(rating=None))
    assert rating_scale(unrated) == DEFAULT_RATING_SCALE


def test_similar_refuses_a_new_item_it_cannot_place(run):
    """Without text cold start a text-only item has no vector: before, ``similar`` answered
    arbitrary items all at 0.0; now it says so (409)."""
    engine = Engine(run, text_cold_start=False)
    engine.updater.apply(WriteBatch(items=(ItemRecord("words-only", "Saxophone Lounge"),)))
    with pytest.raises(RequestError, match="no vector to compare") as error:
        engine.similar(engine.item_index("words-only"), 5)
    assert error.value.status == 409


def test_new_item_with_text_is_similar_to_items_with_that_text(run, engine):
    """With text cold start the new item's content vector places it next to the item whose
    text it repeats, with real (non-zero) similarities."""
    texts = run.dataset.item_text
    name = engine.items.names[7]
    engine.updater.apply(WriteBatch(items=(ItemRecord("twin", name),)))
    ids, sims = engine.similar(engine.item_index("twin"), 5)
    assert texts is not None and 7 in ids.tolist()
    assert np.all(np.abs(sims) > 1e-3)


@pytest.fixture(scope="module")
def ctr_run(tmp_path_factory):
    params = {**SMOKE, "trainer": {**SMOKE["trainer"], "epochs": 3}}
    return load_run(trained_run(tmp_path_factory.getbasetemp(), "ctr-kgcn", params))


def test_ctr_model_reranks_candidates_with_its_head(ctr_run):
    engine = Engine(ctr_run, candidates=50)
    assert engine.space.has_ctr
    for user in (0, 13, 42):
        ids, scores = engine.recommend(user, 10)
        np.testing.assert_allclose(scores, ctr_run.model.score(np.full(10, user), ids),
                                   rtol=1e-4, atol=1e-5)
        assert np.all(np.diff(scores) <= 1e-9)
        # The 10 are the CTR head's best among the retrieval head's 50 candidates.
        view = engine.user_view(user)
        fused = engine.item_fused
        retrieval = fused @ view.fused + engine.item_bias
        retrieval[view.excluded] = -np.inf
        pool = np.argsort(-retrieval, kind="stable")[:50]
        best = pool[np.argsort(-ctr_run.model.score(np.full(50, user), pool))[:10]]
        assert set(best.tolist()) == set(ids.tolist())


def test_hnsw_index_finds_the_exact_top_items(run):
    flat, hnsw = Engine(run, index="flat"), Engine(run, index="hnsw")
    assert (flat.index.kind, hnsw.index.kind) == ("flat", "hnsw")
    overlap = []
    for user in range(0, run.dataset.n_users, 10):
        exact, exact_scores = flat.recommend(user, 10)
        found, scores = hnsw.recommend(user, 10)
        overlap.append(len(set(exact) & set(found)) / 10)
        # Whatever HNSW returns is scored exactly (re-scored, not its graph distances).
        np.testing.assert_allclose(scores, hnsw.score(np.full(10, user), found), rtol=1e-4,
                                   atol=1e-5)
    assert np.mean(overlap) >= 0.95
    ids, _ = hnsw.similar(7, 5)
    assert len(set(ids) & set(flat.similar(7, 5)[0])) >= 4
