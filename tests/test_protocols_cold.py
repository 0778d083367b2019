"""cold-items / cold-users: fractions, seeding, by-entity valid/test, user_shots by time,
rank_among candidates, manifest round trip, and leakage (held-out pairs and every
user-produced row about a cold entity) on the tiny fixture and the synthetic world."""

from __future__ import annotations

import numpy as np
import pytest
from test_protocols import tiny_dataset

from fusionrec.data.leakage import assert_no_leakage, find_cold_leaks, pair_keys
from fusionrec.data.manifest import read_manifest, write_manifest
from fusionrec.data.protocols import ProtocolError, make_split
from fusionrec.data.schema import Interactions
from fusionrec.data.synthetic import generate
from fusionrec.text.items import ItemTextualiser
from fusionrec.text.users import UserTextualiser

COLD = ("cold-items", "cold-users")


def _world():
    return generate(n_users=80, n_items=60, n_interactions=1500, seed=5)


def _column(kind):
    return "item" if kind == "cold-items" else "user"


@pytest.mark.parametrize("name", COLD)
def test_fraction_seed_and_by_entity_parts(name):
    dataset = _world()
    col = _column(name)
    split = make_split(dataset, name, seed=3, cold_fraction=0.25)
    assert split.params == {"cold_fraction": 0.25, "valid_share": 0.5, "rank_among": "cold",
                            **({"user_shots": 0} if name == "cold-users" else {})}
    eligible = np.unique(getattr(dataset.interactions, col))
    valid, test = np.unique(getattr(split.valid, col)), np.unique(getattr(split.test, col))
    assert valid.size + test.size == round(0.25 * eligible.size)
    assert abs(valid.size - test.size) <= 1
    assert not set(valid) & set(test)  # one cold entity's pairs sit in one part only
    assert not set(getattr(split.train, col)) & (set(valid) | set(test))  # none in train
    assert np.array_equal(split.cold.entities, np.union1d(valid, test))
    # every distinct pair of the dataset is in exactly one part
    n = dataset.n_items
    parts = [pair_keys(p.user, p.item, n) for p in (split.train, split.valid, split.test)]
    every = np.unique(pair_keys(dataset.interactions.user, dataset.interactions.item, n))
    assert sum(len(p) for p in parts) == every.size
    assert np.array_equal(np.sort(np.concatenate(parts)), every)
    again = make_split(dataset, name, seed=3, cold_fraction=0.25)
    other = make_split(dataset, name, seed=4, cold_fraction=0.25)
    assert np.array_equal(again.cold.entities, split.cold.entities)
    assert not np.array_equal(other.cold.entities, split.cold.entities)


def test_user_shots_keep_each_cold_users_earliest_pairs_in_train():
    dataset = _world()
    inter = dataset.interactions
    zero = make_split(dataset, "cold-users", seed=1)
    split = make_split(dataset, "cold-users", seed=1, user_shots=3)
    assert np.array_equal(split.cold.entities, zero.cold.entities)  # same users drawn
    for user in split.cold.entities:
        mine = inter.user == user
        # first event per item, then items ordered by time (file order on ties)
        rows = np.flatnonzero(mine)
        order = rows[np.lexsort((rows, inter.timestamp[rows]))]
        _, first = np.unique(inter.item[order], return_index=True)
        by_time = inter.item[order][np.sort(first)]
        shots = split.train.item[split.train.user == user]
        expected = by_time[:min(3, by_time.size - 1)]
        assert sorted(shots) == sorted(expected)
        held = np.r_[split.valid.item[split.valid.user == user],
                     split.test.item[split.test.user == user]]
        assert held.size == by_time.size - expected.size >= 1
    # the shots are history the model may read: in the features, for those users only
    assert_no_leakage(split)
    assert sum(find_cold_leaks(split).values()) == 0
    with pytest.raises(ProtocolError, match="user_shots"):
        make_split(dataset, "cold-users", user_shots=-1)


def test_user_shots_without_timestamps_follow_a_seeded_order():
    dataset = _world()
    inter = dataset.interactions
    plain = dataset.replace(interactions=Interactions(inter.user, inter.item, inter.rating))
    a = make_split(plain, "cold-users", seed=2, user_shots=2)
    b = make_split(plain, "cold-users", seed=2, user_shots=2)
    assert np.array_equal(a.train.item, b.train.item)
    cold_rows = np.isin(a.train.user, a.cold.entities)
    assert 0 < cold_rows.sum() <= 2 * a.cold.entities.size


@pytest.mark.parametrize("name", COLD)
def test_rank_among_sets_the_candidates(name):
    dataset = _world()
    cold = make_split(dataset, name, seed=0)
    assert np.array_equal(cold.cold.candidates("test"), np.unique(cold.test.item))
    assert np.array_equal(cold.cold.candidates("valid"), np.unique(cold.valid.item))
    if name == "cold-items":  # exactly the part's cold items
        assert set(cold.cold.candidates("test")) <= set(cold.cold.entities)
        assert not set(cold.cold.candidates("test")) & set(cold.train.item)
    every = make_split(dataset, name, seed=0, rank_among="all")
    assert every.cold.candidates("test") is None and every.cold.candidates("valid") is None
    assert np.array_equal(every.test.item, cold.test.item)  # same split, other ranking
    with pytest.raises(ProtocolError, match="rank_among"):
        make_split(dataset, name, rank_among="warm")
    with pytest.raises(ProtocolError, match="cold_fraction"):
        make_split(dataset, name, cold_fraction=1.0)


@pytest.mark.parametrize("name, params", [(name, params) for name in COLD
                                           for params in ({}, {"rank_among": "all"})]
                         + [("cold-users", {"user_shots": 2})])
def test_manifest_round_trip_keeps_cold_entities_and_candidates(tmp_path, name, params):
    dataset = _world()
    split = make_split(dataset, name, seed=6, **params)
    write_manifest(split, tmp_path)
    back = read_manifest(tmp_path, dataset)
    assert back.params == split.params
    for part in ("train", "valid", "test"):
        assert np.array_equal(back.part(part).user, split.part(part).user)
        assert np.array_equal(back.part(part).item, split.part(part).item)
    assert back.cold.kind == split.cold.kind
    assert np.array_equal(back.cold.entities, split.cold.entities)
    for part in ("valid", "test"):
        a, b = back.cold.candidates(part), split.cold.candidates(part)
        assert (a is None and b is None) or np.array_equal(a, b)
    f, g = back.features, split.features
    assert f.reviews.text == g.reviews.text
    assert np.array_equal(f.item_attributes.tags.item, g.item_attributes.tags.item)


def _content_only(dataset):
    """The dataset as it stands before anyone interacted: no interactions, tags or reviews."""
    attrs = dataset.item_attributes
    empty = Interactions(np.zeros(0, int), np.zeros(0, int))
    return dataset.replace(interactions=empty, reviews=None,
                           item_attributes=None if attrs is None
                           else type(attrs)(attrs.attributes, None))


def clean_cold_split(dataset, protocol, **params):
    """The split, after checking that no held-out pair and no user-made row about a cold
    entity is visible in its features."""
    split = make_split(dataset, protocol, **params)
    assert_no_leakage(split)
    assert set(find_cold_leaks(split).values()) == {0}
    return split


@pytest.mark.parametrize("make", [tiny_dataset, _world])
def test_cold_items_see_only_pre_interaction_content(make):
    dataset = make()
    split = clean_cold_split(dataset, "cold-items", seed=0, cold_fraction=0.3)
    assert set(find_cold_leaks(split)) == {"interactions", "tags", "reviews"}
    # the raw data does carry user content on the cold items: the check is not vacuous
    raw = dataset.item_attributes.tags
    assert np.isin(raw.item, split.cold.entities).any()
    assert np.isin(dataset.reviews.item, split.cold.entities).any()
    # the text a model reads for a cold item equals its text before any interaction
    seen, before = ItemTextualiser(split.features), ItemTextualiser(_content_only(dataset))
    for item in split.cold.entities:
        assert seen.text(int(item)) == before.text(int(item))
    # warm items keep their user-made content from training pairs
    warm = np.setdiff1d(np.unique(split.train.item), split.cold.entities)
    assert np.isin(split.features.item_attributes.tags.item, warm).any()


@pytest.mark.parametrize("make", [tiny_dataset, _world])
def test_cold_users_keep_attributes_and_friends_but_no_interaction_text(make):
    dataset = make()
    split = clean_cold_split(dataset, "cold-users", seed=0, cold_fraction=0.3)
    assert np.isin(dataset.reviews.user, split.cold.entities).any()
    raw = UserTextualiser(dataset)  # the raw data would describe them by their interactions
    assert all(raw.history.sections(int(u), 1) for u in split.cold.entities)
    texts = UserTextualiser(split.features)
    for user in split.cold.entities:
        user = int(user)
        assert texts.history.sections(user, 1) == []
        for section in (texts.tags.user_section(user, 2), texts.reviews.user_section(user, 4)):
            assert section is None or not section.parts
    # attributes and the social graph are untouched
    assert split.features.user_attributes is dataset.user_attributes
    assert split.features.social is dataset.social


def test_cold_leak_check_detects_planted_rows():
    dataset = _world()
    split = make_split(dataset, "cold-items", seed=0)
    tags = dataset.item_attributes.tags  # the synthetic world's tags name no user
    assert tags.user is None
    on_cold = np.flatnonzero(np.isin(tags.item, split.cold.entities))[:2]
    kept = split.features.item_attributes.tags
    planted = type(kept)(np.r_[kept.item, tags.item[on_cold]], np.r_[kept.tag, tags.tag[on_cold]],
                         kept.vocabulary)
    attrs = split.features.item_attributes
    leaky = type(split)(split.protocol, split.task, split.seed, split.train, split.valid,
                        split.test, split.features.replace(
                            item_attributes=type(attrs)(attrs.attributes, planted)),
                        split.params, split.cold)
    # anonymous tags pair no user with the item, so the pair check misses them ...
    assert_no_leakage(leaky)
    # ... and the cold check does not
    assert find_cold_leaks(leaky)["tags"] == 2
