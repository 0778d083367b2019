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


def test_candidates_limit_the_draws_and_still_exclude_seen_items():
    # items 4 and 5 are outside the candidates (say, held out of training): never drawn
    sampler = NegativeSampler.from_pairs(USERS, ITEMS, n_items=6,
                                         candidates=np.array([0, 1, 2, 3]))
    draws = sampler.draw(np.array([0, 1]), 200, np.random.default_rng(0))
    assert set(draws[1].tolist()) == {0, 1, 2}  # user 1 has seen item 3
    # user 0 has seen 3 of the 4 candidates: rejection sampling almost always lands on item 3
    assert set(draws[0].tolist()) <= {0, 1, 2, 3} and (draws[0] == 3).mean() > 0.95
    assert set(sampler.uniform(np.random.default_rng(1), 500).tolist()) == {0, 1, 2, 3}
