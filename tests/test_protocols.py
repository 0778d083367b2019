"""Protocols on a tiny hand-built multi-source dataset: sizes, determinism, no leakage."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.data.leakage import assert_no_leakage, find_leaks, pair_keys
from fusionrec.data.protocols import (PROTOCOLS, ProtocolError, make_split, protocol_params,
                                      protocol_task)
from fusionrec.data.protocols.topk_random import recbole_counts
from fusionrec.data.schema import (Dataset, Interactions, ItemAttributes, ItemText,
                                   KnowledgeGraph, Reviews, Social, Tags, Vocabulary)

FEWSHOT = {"history": 3, "n_records": 20}  # the tiny data has too few ratings for 10 / 10,000


def tiny_dataset(seed: int = 7, n_users: int = 8, n_items: int = 15) -> Dataset:
    """Users with 1..12 ratings (timestamps with ties, one duplicate event), tags by users on
    rated and unrated items, a review on every rated pair, a social graph and a small KG."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        count = [1, 2, 3][u] if u < 3 else int(rng.integers(5, 13))
        users += [u] * count
        items += list(rng.choice(n_items, count, replace=False))
    file_order = rng.permutation(len(users))  # interleave users like a real log file
    user = np.array(users)[file_order]
    item = np.array(items)[file_order]
    rating = rng.integers(1, 6, user.size).astype(float)
    timestamp = rng.integers(0, 6, user.size) * 100  # coarse: many ties
    # one repeated event of an existing pair, later in time
    user, item = np.r_[user, user[-1]], np.r_[item, item[-1]]
    rating, timestamp = np.r_[rating, 5.0], np.r_[timestamp, 900]
    tag_vocab = Vocabulary(("rock", "jazz", "pop"))
    on_rated = min(30, user.size)  # tags by users on items they rated ...
    tag_user = np.r_[user[:on_rated], rng.integers(0, n_users, 5), np.full(5, -1)]
    tag_item = np.r_[item[:on_rated], rng.integers(0, n_items, 10)]  # ... on others, anonymous
    tags = Tags(tag_item, rng.integers(0, 3, tag_item.size), tag_vocab, user=tag_user)
    reviews = Reviews(user, item, tuple(f"review {i}" for i in range(user.size)),
                      rating=rating, timestamp=timestamp)
    kg = KnowledgeGraph(head=[0, 1, 2], relation=[0, 0, 1], tail=[3, 3, 4],
                        entities=Vocabulary.from_values(range(5)),
                        relations=Vocabulary(("genre", "era")),
                        link_item=[0, 1, 2], link_entity=[0, 1, 2])
    return Dataset(
        name="tiny",
        users=Vocabulary.from_values(f"u{u}" for u in range(n_users)),
        items=Vocabulary.from_values(f"i{i}" for i in range(n_items)),
        interactions=Interactions(user, item, rating=rating, timestamp=timestamp),
        item_attributes=ItemAttributes(tags=tags),
        item_text=ItemText({"title": tuple(f"Item {i}" for i in range(n_items))}),
        social=Social([0, 1, 2], [1, 2, 3]),
        kg=kg,
        reviews=reviews,
    )


def _split(dataset, name, seed=0):
    return make_split(dataset, name, seed, **(FEWSHOT if name == "fewshot-tallrec" else {}))


def _keys(pairs, n_items):
    return pair_keys(pairs.user, pairs.item, n_items)


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_every_protocol_is_deterministic_and_leak_free(name):
    dataset = tiny_dataset()
    first, again, other = _split(dataset, name), _split(dataset, name), _split(dataset, name, 1)
    assert first.protocol == name and first.task == protocol_task(name)
    for part in ("train", "valid", "test"):
        a, b = first.part(part), again.part(part)
        assert np.array_equal(a.user, b.user) and np.array_equal(a.item, b.item)
        assert np.array_equal(a.label, b.label)
    assert len(first.valid) + len(first.test) > 0
    if name != "loo-temporal":  # the only protocol with no randomness
        assert any(not np.array_equal(first.part(p).item, other.part(p).item)
                   for p in ("train", "valid", "test"))
    assert_no_leakage(first)
    if first.task == "links":  # held-out friendships; the details: tests/test_links.py
        assert set(find_leaks(first)) == {"social"}
    else:
        assert set(find_leaks(first)) == {"interactions", "tags", "reviews"}
        # the features' interactions are exactly the rows of training positives
        pos = first.train.positives()
        assert set(_keys(first.features.interactions, dataset.n_items)) == \
            set(_keys(pos, dataset.n_items))
    # split.params rebuild the split
    rebuilt = make_split(dataset, name, first.seed, **first.params)
    assert np.array_equal(rebuilt.test.item, first.test.item)


def test_leak_check_detects_a_planted_leak():
    dataset = tiny_dataset()
    split = _split(dataset, "topk-random")
    held = split.test
    planted = Reviews(np.r_[split.features.reviews.user, held.user[:1]],
                      np.r_[split.features.reviews.item, held.item[:1]],
                      split.features.reviews.text + ("leak",))
    leaky = type(split)(split.protocol, split.task, split.seed, split.train, split.valid,
                        split.test, split.features.replace(reviews=planted))
    assert find_leaks(leaky)["reviews"] == 1
    with pytest.raises(AssertionError, match="reviews"):
        assert_no_leakage(leaky)


def test_ctr_kgcn_balances_negatives_and_splits_622():
    dataset = tiny_dataset()
    split = make_split(dataset, "ctr-kgcn", seed=3)
    n_items = dataset.n_items
    observed = set(pair_keys(dataset.interactions.user, dataset.interactions.item, n_items))
    labelled = [split.train, split.valid, split.test]
    user = np.concatenate([p.user for p in labelled])
    item = np.concatenate([p.item for p in labelled])
    label = np.concatenate([p.label for p in labelled])
    n = user.size
    assert len(split.valid) == int(n * 0.2) == len(split.test)
    keys = pair_keys(user, item, n_items)
    assert set(keys[label == 1]) == observed  # every distinct observed pair, once
    assert (label == 1).sum() == len(observed)
    assert not set(keys[label == 0]) & observed  # negatives are unobserved
    for u in np.unique(user):  # one negative per positive, per user
        mine = user == u
        n_pos = int((label[mine] == 1).sum())
        negatives = item[mine & (label == 0)]
        assert negatives.size == n_pos
        # drawn without replacement unless the user left too few unseen items
        assert np.unique(negatives).size == min(n_pos, n_items - n_pos)


def test_recbole_counts_match_hand_values():
    total = np.array([1, 2, 3, 9, 10, 11, 25])
    train, valid, test = recbole_counts(total, (0.8, 0.1, 0.1))
    assert list(zip(train, valid, test)) == [(1, 0, 0), (1, 0, 1), (1, 1, 1), (7, 1, 1),
                                             (8, 1, 1), (9, 1, 1), (21, 2, 2)]


def test_topk_random_sizes_per_user():
    dataset = tiny_dataset()
    split = make_split(dataset, "topk-random", seed=5)
    inter = dataset.interactions
    n_items = dataset.n_items
    distinct = np.unique(pair_keys(inter.user, inter.item, n_items))
    parts = [split.train, split.valid, split.test]
    assert sum(len(p) for p in parts) == distinct.size  # the duplicate event counted once
    for u in range(dataset.n_users):
        sizes = [int((p.user == u).sum()) for p in parts]
        expected = [int(c[0]) for c in recbole_counts(np.array([sum(sizes)]), (0.8, 0.1, 0.1))]
        assert sizes == expected
    assert all(np.all(p.label == 1) for p in parts)


def test_loo_temporal_holds_out_last_two_by_time():
    dataset = tiny_dataset()
    split = make_split(dataset, "loo-temporal")
    inter = dataset.interactions
    for u in range(dataset.n_users):
        rows = np.flatnonzero(inter.user == u)
        # earliest event per item, ties by file order -> the expected time order
        first = {}
        for r in sorted(rows, key=lambda r: (inter.timestamp[r], r)):
            first.setdefault(int(inter.item[r]), r)
        timeline = [i for i, _ in sorted(first.items(), key=lambda kv: (inter.timestamp[kv[1]],
                                                                          kv[1]))]
        test = list(split.test.item[split.test.user == u])
        valid = list(split.valid.item[split.valid.user == u])
        if len(timeline) == 1:
            assert test == [] and valid == []
        elif len(timeline) == 2:
            assert test == timeline[-1:] and valid == []
        else:
            assert test == timeline[-1:] and valid == timeline[-2:-1]


def test_loo_temporal_needs_timestamps():
    dataset = tiny_dataset()
    inter = dataset.interactions
    bare = dataset.replace(interactions=Interactions(inter.user, inter.item, inter.rating))
    with pytest.raises(ProtocolError, match="no interaction timestamps"):
        make_split(bare, "loo-temporal")


def test_fewshot_records_histories_and_features():
    dataset = tiny_dataset()
    split = make_split(dataset, "fewshot-tallrec", seed=0, shots=4, **FEWSHOT)
    assert len(split.train) == 4 and len(split.valid) == 2 and len(split.test) == 2
    inter = dataset.interactions
    for pairs in (split.train, split.valid, split.test):
        assert pairs.history_items.shape == (len(pairs), 3)
        for u, i, lab, hist, hlab in zip(pairs.user, pairs.item, pairs.label,
                                         pairs.history_items, pairs.history_labels):
            rows = np.flatnonzero(inter.user == u)
            timeline = sorted(rows, key=lambda r: (inter.timestamp[r], r))
            pos = [int(inter.item[r]) for r in timeline].index(i)  # items are unique per user
            assert [int(inter.item[r]) for r in timeline[pos - 3:pos]] == list(hist)
            assert lab == float(inter.rating[timeline[pos]] > 3)
            assert list(hlab) == [float(inter.rating[r] > 3) for r in timeline[pos - 3:pos]]
    features = split.features
    assert features.interactions.rating is None  # only like/dislike is revealed
    assert len(features.interactions) == int(split.train.label.sum())
    # side sources only show pairs the few-shot records reveal
    n = dataset.n_items
    shown = set(_keys(split.train, n)) | {
        int(k) for u, h in zip(split.train.user, split.train.history_items)
        for k in pair_keys(np.full(h.size, u), h, n)}
    rated = set(pair_keys(inter.user, inter.item, n))
    review_keys = set(_keys(features.reviews, n))
    assert review_keys <= shown
    assert not (review_keys & (rated - shown))


def test_fewshot_keeps_the_last_records_in_order():
    dataset = tiny_dataset()
    full = make_split(dataset, "fewshot-tallrec", seed=0, history=3, n_records=10_000)
    parts = (full.train, full.valid, full.test)
    n = sum(len(p) for p in parts)
    assert len(full.train) == int(n * 0.8)
    last = make_split(dataset, "fewshot-tallrec", seed=0, history=3, n_records=10)
    # the 10 kept records are the tail of the full record sequence, in order
    assert np.array_equal(last.test.item, full.test.item[-len(last.test):])


def test_unknown_protocol_and_params_are_clear():
    dataset = tiny_dataset()
    with pytest.raises(ValueError, match="known protocols: ctr-kgcn, topk-random"):
        make_split(dataset, "nope")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['ratio'\]"):
        make_split(dataset, "topk-random", ratio=0.5)
    with pytest.raises(ProtocolError, match="shots must be"):
        make_split(dataset, "fewshot-tallrec", shots=10_000, **FEWSHOT)
    assert protocol_params("fewshot-tallrec")["history"] == 10


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_protocols_on_the_synthetic_world_are_leak_free(name):
    synthetic = pytest.importorskip("fusionrec.data.synthetic")
    dataset = synthetic.generate(n_users=60, n_items=40, n_interactions=800, seed=3)
    params = {"history": 5, "n_records": 200} if name == "fewshot-tallrec" else {}
    split = make_split(dataset, name, seed=0, **params)
    assert len(split.train) and len(split.test)
    assert_no_leakage(split)
    if dataset.reviews is not None and name != "fewshot-tallrec":
        # reviews on training pairs survive: the filter removes only held-out pairs
        kept = set(_keys(split.features.reviews, dataset.n_items))
        train = set(_keys(split.train.positives(), dataset.n_items))
        all_reviews = set(_keys(dataset.reviews, dataset.n_items))
        assert kept >= (all_reviews & train)
