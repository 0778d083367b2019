"""Forgetting a user: gone from every file of the run folder, the event store and the embedding
cache (raw id, pseudonym, embedding rows, cached text vectors), with dependent rows re-derived
and the run still loadable, servable and checksummed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from privacy_support import KEY, byte_hits, cache_of, copy_run, files_under, fixture_paths, \
    pseudonym, raw_id, trained

from fusionrec.encoders.config import CACHE_ENV

from fusionrec.models.common.persist import load_model_files
from fusionrec.privacy.forget import ForgetError, forget_user
from fusionrec.data.events import Event, UserRecord, WriteBatch, open_store
from fusionrec.training.artifacts import open_run
from fusionrec.training.run import load_run_split

USER = 5


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tmp_path_factory.getbasetemp()


def _unique_rows(table: np.ndarray, user: int) -> dict[str, bytes]:
    """The user's non-zero rows (one per source) that no other user shares (users with the
    same attributes share their attribute row, which is then not *their* data)."""
    out = {}
    for s in range(table.shape[1]):
        row = table[user, s]
        others = np.delete(table[:, s], user, axis=0)
        if np.abs(row).sum() > 0 and not (others == row).all(axis=1).any():
            out[f"row{s}"] = np.ascontiguousarray(row).tobytes()
    return out


@pytest.fixture
def run_copy(base, tmp_path, monkeypatch):
    """A copy of the pseudonymised fusion run, with its own copy of the embedding cache."""
    run_dir = copy_run(base, tmp_path / "run")
    monkeypatch.setenv(CACHE_ENV, str(cache_of(run_dir)))
    return run_dir


def _user_text_vector(run_dir, user: int) -> bytes:
    """The cached LM vector of the user's text (what the embedding cache holds for them)."""
    from fusionrec.encoders.cache import EmbeddingCache, text_hash
    from fusionrec.encoders.hashing import HashingEncoder
    from fusionrec.text.options import TextOptions
    from fusionrec.text.users import UserTextualiser

    config, manifest, model = open_run(run_dir)
    _, split = load_run_split(run_dir, config, manifest)
    encoder_config = model.config.text_encoder_config()
    options = TextOptions.for_max_length(encoder_config.max_length)
    textualiser = UserTextualiser(split.features, options)
    encoder = HashingEncoder(16)
    cache = EmbeddingCache(cache_of(run_dir), encoder.identity, textualiser.version, 16)
    vectors, found = cache.lookup([text_hash(textualiser.text(user))])
    assert found.all(), "the user's text should be cached before forgetting"
    return vectors[0].tobytes()


def _store_with_events(run_dir, user_id: str, friend_id: str):
    store = open_store(str(run_dir / "events.sqlite3"))
    store.write(WriteBatch(events=(Event(user_id, "i3"), Event(user_id, "i4", "rating", 4.0),
                                   Event(friend_id, "i5")),
                           users=(UserRecord(user_id, "my own words", {}, ()),
                                  UserRecord(friend_id, "hello", {}, (user_id,)))))
    return store


def test_forget_leaves_no_trace_in_run_folder_store_or_cache(run_copy):
    run_dir = run_copy
    users = json.loads((run_dir / "users.json").read_text())
    index = users.index(pseudonym(USER))
    _, tensors = load_model_files(run_dir)
    needles = {"raw id": raw_id(USER).encode(), "pseudonym": pseudonym(USER).encode(),
               **_unique_rows(tensors["tables.user"], index),
               "text vector": _user_text_vector(run_dir, index)}
    assert len(needles) >= 6  # raw id, pseudonym, text vector and several source rows
    store = _store_with_events(run_dir, pseudonym(USER), users[7])
    everything = lambda: files_under(run_dir, cache_of(run_dir))  # noqa: E731
    before = {name for _, name in byte_hits(everything(), needles)}
    assert before == set(needles) - {"raw id"}  # the search finds what is there

    report = forget_user(run_dir, raw_id(USER), store=store)  # raw id: the key maps it
    store.close()

    assert byte_hits(everything(), needles) == []
    assert report.store == {"events": 2, "user_records": 1, "friend_links": 1}
    assert report.removed["split_rows"] > 0 and report.removed["cache_entries"] >= 1
    assert not report.retrained and any("interactions" in n for n in report.needs_retrain)
    assert not (run_dir / "checkpoints").exists()
    reopened = open_store(str(run_dir / "events.sqlite3"))
    assert [e.user_id for e in reopened.events()] == [users[7]]
    assert [u.friends for u in reopened.users()] == [()]
    reopened.close()


def test_forgotten_run_reloads_with_fresh_checksums_and_a_tombstone(run_copy):
    run_dir = run_copy
    config, manifest, _ = open_run(run_dir)
    _, split = load_run_split(run_dir, config, manifest)
    index = split.features.users.index(pseudonym(USER))
    forget_user(run_dir, pseudonym(USER))
    config, manifest, model = open_run(run_dir)  # checksums verified
    dataset, after = load_run_split(run_dir, config, manifest)
    assert dataset.users.ids[index] == "~forgotten~0" and dataset.n_users == 60
    assert pseudonym(USER) not in dataset.users
    for part in ("train", "valid", "test"):
        assert index not in after.part(part).user
        assert len(after.part(part)) == len(split.part(part).take(
            split.part(part).user != index))
    assert index not in after.features.interactions.user
    assert index not in np.concatenate([after.features.social.source,
                                        after.features.social.target])
    assert manifest["forget"]["users"] == 1 and manifest["forget"]["needs_retrain"]
    assert model.seen_.items_of(index).size == 0
    scores = model.score(np.array([0, 1]), np.array([2, 3]))
    assert np.isfinite(scores).all()
    ids, _ = model.recommend(np.array([0]), k=5)
    assert ids.shape == (1, 5)
    with pytest.raises(ForgetError, match="tombstone"):
        forget_user(run_dir, "~forgotten~0")
    with pytest.raises(ForgetError, match="unknown user"):
        forget_user(run_dir, pseudonym(USER))
    forget_user(run_dir, raw_id(6))  # a second forget stacks
    assert json.loads((run_dir / "manifest.json").read_text())["forget"]["users"] == 2


def test_closed_form_rows_match_the_encoders_before_and_after(run_copy):
    """The rows forget re-derives are exactly what the model's encoders compute: an item's
    user_attributes row is the mean of its users' rows; a user's item_text row the mean of
    their items' text rows."""
    from fusionrec.models.fusion.servable import _mean_over, training_pairs

    run_dir = run_copy

    def check() -> None:
        config, manifest, model = open_run(run_dir)
        _, split = load_run_split(run_dir, config, manifest)
        users, items = training_pairs(split.features)
        _, tensors = load_model_files(run_dir)
        sources = list(model.sources_)
        user_t, item_t = tensors["tables.user"], tensors["tables.item"]
        s = sources.index("user_attributes")
        has = np.bincount(items, minlength=len(item_t)) > 0
        expected = _mean_over(items, users, user_t[:, s], len(item_t))
        np.testing.assert_allclose(item_t[has, s], expected[has], atol=1e-5)
        s = sources.index("item_text")
        expected = _mean_over(users, items, item_t[:, s], len(user_t))
        active = np.bincount(users, minlength=len(user_t)) > 0
        np.testing.assert_allclose(user_t[active, s], expected[active], atol=1e-5)

    check()
    report = forget_user(run_dir, pseudonym(USER))
    assert report.removed["masked_item_text_rows"] >= 1  # its reviews shaped item texts
    check()


def test_bpr_mf_forgets_in_place_through_the_servable_contract(base, tmp_path, monkeypatch):
    """A BPR-MF run forgets in place: the user's vector is zeroed, their seen items go, and
    the report names what still carries their influence (the item weights)."""
    run_dir = copy_run(base, tmp_path / "run", model="bpr-mf")
    monkeypatch.setenv(CACHE_ENV, str(cache_of(run_dir)))
    _, _, before = open_run(run_dir)
    user = int(np.flatnonzero([u == pseudonym(USER) for u in
                               json.loads((run_dir / "users.json").read_text())])[0])
    assert np.abs(before.vector_tables().user[user]).sum() > 0
    report = forget_user(run_dir, pseudonym(USER))
    assert not report.retrained and any("item vectors" in n for n in report.needs_retrain)
    config, manifest, after = open_run(run_dir)  # checksums were rewritten: it reloads
    tables = after.vector_tables()
    assert np.abs(tables.user[user]).sum() == 0 and len(tables.seen.items_of(user)) == 0
    others = np.arange(len(tables.user)) != user
    np.testing.assert_array_equal(tables.user[others], before.vector_tables().user[others])
    assert manifest["forget"]["needs_retrain"] == list(report.needs_retrain)


def test_non_fusion_runs_retrain_through_the_cli(base, tmp_path, capsys, monkeypatch):
    from fusionrec.cli.main import main

    run_dir = copy_run(base, tmp_path / "run", model="bpr-mf")
    monkeypatch.setenv(CACHE_ENV, str(cache_of(run_dir)))
    assert main(["forget", str(run_dir), "--user", raw_id(USER), "--retrain"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["retrained"] and report["needs_retrain"] == []
    config, manifest, model = open_run(run_dir)
    assert manifest["forget"] == {"users": 1, "retrained": True, "needs_retrain": [],
                                  "metrics": "retrained without the forgotten users"}
    assert byte_hits(files_under(run_dir), {"p": pseudonym(USER).encode(),
                                            "r": raw_id(USER).encode()}) == []
    dataset, split = load_run_split(run_dir, config, manifest)
    assert "ndcg@5" in manifest["metrics"]["test"] and len(split.test)
    assert main(["forget", str(run_dir), "--user", "nobody"]) == 2
    assert "unknown user" in capsys.readouterr().err


def test_store_forget_overwrites_deleted_rows(tmp_path):
    path = tmp_path / "events.sqlite3"
    store = open_store(str(path))
    secret = "user-with-a-secret-id"
    store.write(WriteBatch(events=tuple(Event(secret, f"i{j}") for j in range(50)),
                           users=(UserRecord(secret, "text of the secret user"),)))
    store.write(WriteBatch(events=(Event("other", "i1"),)))
    counts = store.forget_user(secret)
    assert counts == {"events": 50, "user_records": 1, "friend_links": 0}
    assert store.count() == 1 and store.users() == []
    assert byte_hits(files_under(tmp_path), {"id": secret.encode(),
                                              "text": b"text of the secret user"}) == []
    store.close()


def test_cache_remove_rewrites_shards_without_the_rows(tmp_path):
    from fusionrec.encoders.cache import EmbeddingCache

    identity = {"model": "test", "weights_hash": "x"}
    cache = EmbeddingCache(tmp_path, identity, "v1", 4)
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4) + 0.5
    cache.add(["a", "b"], vectors[:2], {})
    cache.add(["c"], vectors[2:], {})
    assert cache.remove(["b", "zzz"]) == 1 and cache.remove(["b"]) == 0
    again = EmbeddingCache(tmp_path, identity, "v1", 4)
    found, hit = again.lookup(["a", "b", "c"])
    assert hit.tolist() == [True, False, True] and again.rebuilt is None
    np.testing.assert_array_equal(found[[0, 2]], vectors[[0, 2]])
    assert byte_hits(files_under(tmp_path), {"row b": vectors[1].tobytes()}) == []
    assert again.remove(["a", "c"]) == 2 and len(EmbeddingCache(tmp_path, identity, "v1", 4)) == 0


def test_align_users_drops_every_row_of_a_user():
    from fusionrec.data.synthetic import generate
    from fusionrec.training.align import align_users, tombstoned

    dataset = generate(n_users=40, n_items=30, n_interactions=400)
    gone = int(dataset.social.source[0])
    after = align_users(dataset, tombstoned(dataset.users, gone))
    assert after.users.ids[gone] == "~forgotten~0" and after.n_users == dataset.n_users
    assert gone not in after.interactions.user and gone not in after.reviews.user
    assert gone not in np.concatenate([after.social.source, after.social.target])
    kept = dataset.interactions.user != gone
    np.testing.assert_array_equal(after.interactions.item, dataset.interactions.item[kept])
    assert len(after.social) < len(dataset.social)
    for name, column in after.user_attributes.columns.items():
        original = np.asarray(dataset.user_attributes.columns[name])
        assert column[gone] in ("", None) or np.isnan(column[gone])
        assert list(np.delete(column, gone)) == list(np.delete(original, gone))


def test_key_is_never_written(base):
    assert byte_hits(files_under(trained(base), fixture_paths(base)["cache"]),
                     {"key": KEY}) == []


def test_a_data_copy_inside_the_run_folder_is_rewritten_without_the_user(tmp_path):
    """``fusionrec retrain`` keeps the grown dataset inside its run folder: forgetting must
    clean that copy too, and the run must reload from it."""
    from fusionrec.config import RunConfig
    from fusionrec.data.export import write_dataset
    from fusionrec.data.schema import Vocabulary
    from fusionrec.data.synthetic import generate
    from fusionrec.evaluation.runs import train_run

    dataset = generate(n_users=40, n_items=30, n_interactions=400)
    dataset = dataset.replace(users=Vocabulary(tuple(raw_id(u) for u in range(40))))
    run_dir = tmp_path / "run"
    spec = write_dataset(dataset, run_dir / "data")
    config = RunConfig.from_dict({"data": {"spec": str(spec)},
                                  "model": {"name": "bpr-mf", "params": {"embedding_dim": 8}},
                                  "trainer": {"epochs": 1, "num_threads": 1},
                                  "evaluation": {"ks": [5]}})
    train_run(config, run_dir, progress=False)
    assert byte_hits(files_under(run_dir / "data"), {"id": raw_id(7).encode()})
    report = forget_user(run_dir, raw_id(7), retrain=True)
    assert report.removed["own_data_copy_rewritten"] == 1
    assert byte_hits(files_under(run_dir), {"id": raw_id(7).encode()}) == []
    config, manifest, _ = open_run(run_dir)
    reloaded, _ = load_run_split(run_dir, config, manifest)
    assert reloaded.users.ids[7] == "~forgotten~0" and reloaded.n_users == 40
