"""The one negative sampler every model family (and retraining) shares."""

import numpy as np

from fusionrec.data.split import Pairs
from fusionrec.models.common.ranking import SeenItems
from fusionrec.models.common.sampling import NegativeSampler

# user 0 has seen items 0, 1, 2 of 4, so item 3 is its only negative; user 1 has seen item 3.
USERS = np.array([0, 0, 0, 1])
ITEMS = np.array([2, 0, 1, 3])


def test_draws_only_items_the_user_has_not_seen():
    sampler = NegativeSampler.from_pairs(USERS, ITEMS, n_items=4)
    draws = sampler.draw(np.array([0, 0, 1, 1]), 50, np.random.default_rng(0))
    assert draws.shape == (4, 50)
    assert set(draws[:2].ravel().tolist()) == {3}
    assert 3 not in draws[2:] and set(draws[2:].ravel().tolist()) <= {0, 1, 2}


def test_pairs_and_seen_items_build_the_same_sampler():
    seen = SeenItems.from_pairs(Pairs(USERS, ITEMS, np.ones(4, np.float32)), n_users=2)
    users = np.array([1, 0, 1])
    by_pairs = NegativeSampler.from_pairs(USERS, ITEMS, 4).draw(users, 8, np.random.default_rng(3))
    by_seen = NegativeSampler.from_seen(seen, 4).draw(users, 8, np.random.default_rng(3))
    np.testing.assert_array_equal(by_pairs, by_seen)
