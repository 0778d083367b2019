"""The synthetic world: deterministic, exact in size, and every source carries recoverable
signal."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.data.schema import SOURCE_NAMES
from fusionrec.data.synthetic import generate


@pytest.fixture(scope="module")
def world():
    return generate()


def _favourite_category(world) -> np.ndarray:
    """Each user's most-consumed item category (observable proxy of the hidden taste)."""
    category = world.item_attributes.attributes.columns["category"]
    names, codes = np.unique(category, return_inverse=True)
    inter = world.interactions
    counts = np.zeros((world.n_users, len(names)))
    np.add.at(counts, (inter.user, codes[inter.item]), 1)
    return counts, codes


def test_default_size_and_sources():
    world = generate()
    assert (world.n_users, world.n_items, len(world.interactions)) == (300, 200, 6000)
    assert world.sources == SOURCE_NAMES
    keys = world.interactions.user * world.n_items + world.interactions.item
    assert len(np.unique(keys)) == len(keys)  # distinct pairs
    assert set(np.unique(world.interactions.rating)) <= {1, 2, 3, 4, 5}
    assert world.users.ids[0] == "u0" and world.items.ids[0] == "i0"


def test_deterministic_by_seed():
    a, b, c = generate(seed=3), generate(seed=3), generate(seed=4)
    for name in ("user", "item", "rating", "timestamp"):
        np.testing.assert_array_equal(getattr(a.interactions, name),
                                      getattr(b.interactions, name))
    assert a.item_text.fields == b.item_text.fields and a.reviews.text == b.reviews.text
    np.testing.assert_array_equal(a.social.source, b.social.source)
    assert not np.array_equal(a.interactions.item, c.interactions.item)


def test_large_worlds_keep_exact_sizes_and_distinct_pairs():
    # How generation time grows with size is measured by benchmarks/scale.py (generate_s),
    # not asserted here: a wall clock on a shared machine measures the machine.
    big = generate(n_users=5000, n_items=2000, n_interactions=100_000, review_fraction=0.05)
    assert (big.n_users, big.n_items, len(big.interactions)) == (5000, 2000, 100_000)
    keys = big.interactions.user * big.n_items + big.interactions.item
    assert len(np.unique(keys)) == len(keys)


def test_rejects_impossible_sizes():
    with pytest.raises(ValueError, match="n_interactions"):
        generate(n_users=10, n_items=10, n_interactions=60)
    with pytest.raises(ValueError, match="n_topics"):
        generate(n_topics=99)


def test_interactions_follow_tastes(world):
    counts, _ = _favourite_category(world)
    # Peaked tastes: a user's top category holds far more than the 1/8 a uniform user would.
    share = counts.max(axis=1) / counts.sum(axis=1).clip(1)
    assert np.mean(share[counts.sum(axis=1) >= 10]) > 0.4


def test_social_edges_are_homophilous(world):
    counts, _ = _favourite_category(world)
    profile = counts / np.linalg.norm(counts, axis=1, keepdims=True).clip(1e-9)
    friends = np.sum(profile[world.social.source] * profile[world.social.target], axis=1)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, world.n_users, (2, 5000))
    strangers = np.sum(profile[a] * profile[b], axis=1)
    assert friends.mean() > strangers.mean() + 0.2


def test_text_attributes_tags_and_kg_agree_on_topic(world):
    category = world.item_attributes.attributes.columns["category"]
    descriptions = world.item_text.fields["description"]
    in_text = np.mean([c in d for c, d in zip(category, descriptions)])
    assert in_text > 0.75  # both are 90% topic-aligned, independently
    kg = world.kg
    genre = kg.relations.index("genre")
    rows = kg.relation == genre
    genre_of_item = np.asarray(kg.entity_names, dtype=object)[kg.tail[rows]]
    agree = np.mean([g.lower() == category[i] for i, g in zip(kg.head[rows], genre_of_item)])
    assert agree > 0.85
    # Items sharing an artist entity share its topic, hence (mostly) a category.
    artist_rows = kg.relation == kg.relations.index("artist")
    by_artist = {}
    for item, artist in zip(kg.head[artist_rows], kg.tail[artist_rows]):
        by_artist.setdefault(artist, []).append(category[item])
    purity = np.mean([max(map(cats.count, cats)) / len(cats)
                      for cats in by_artist.values() if len(cats) > 1])
    assert purity > 0.8
    tags = world.item_attributes.tags
    assert len(np.unique(tags.item)) == world.n_items


def test_reviews_sentiment_matches_rating(world):
    reviews = world.reviews
    positive = np.array([t.split()[0].lower() in ("loved", "brilliant", "wonderful",
                                                   "fantastic", "superb") for t in reviews.text])
    assert reviews.rating[positive].min() >= 4 and reviews.rating[~positive].max() <= 3
    assert 0.15 < len(reviews) / len(world.interactions) < 0.35


def test_user_attributes_carry_weak_signal(world):
    counts, codes = _favourite_category(world)
    favourite = counts.argmax(axis=1)
    region = world.user_attributes.columns["region"]
    # Majority region per favourite category predicts better than the overall majority region.
    hits = sum(max(np.unique(region[favourite == f], return_counts=True)[1])
               for f in np.unique(favourite))
    baseline = max(np.unique(region, return_counts=True)[1])
    assert hits > baseline * 1.2


def test_ratings_rise_with_taste(world):
    counts, codes = _favourite_category(world)
    inter = world.interactions
    on_favourite = codes[inter.item] == counts.argmax(axis=1)[inter.user]
    assert inter.rating[on_favourite].mean() > inter.rating[~on_favourite].mean() + 0.3
