"""filter_side_sources and the leak check on a hand-written five-row example."""

from __future__ import annotations

import numpy as np

from fusionrec.data.leakage import (filter_side_sources, find_leaks, heldout_keys, pair_keys,
                                    visible_pairs)
from fusionrec.data.schema import (Dataset, Interactions, ItemAttributes, Reviews, Tags,
                                   Vocabulary)
from fusionrec.data.split import Pairs, Split


def _dataset() -> Dataset:
    # users 0, 1; items 0..3. Held out below: (0, 1) positive, (1, 3) sampled negative.
    tags = Tags(item=[1, 1, 2, 3, 1], tag=[0, 1, 0, 1, 1], vocabulary=Vocabulary(("a", "b")),
                user=[0, -1, 0, 1, 1])
    reviews = Reviews(user=[0, 0, 1], item=[0, 1, 2], text=("ok", "held out", "fine"))
    return Dataset(name="five", users=Vocabulary(("u0", "u1")),
                   items=Vocabulary(("i0", "i1", "i2", "i3")),
                   interactions=Interactions([0, 0, 1], [0, 1, 2]),
                   item_attributes=ItemAttributes(tags=tags), reviews=reviews)


def test_filter_removes_only_rows_on_heldout_pairs():
    dataset = _dataset()
    held = heldout_keys(4, Pairs([0], [1], [1.0]), Pairs([1], [3], [0.0]))
    assert list(held) == [1, 7]
    out = filter_side_sources(dataset, held)
    tags = out.item_attributes.tags
    # kept: anonymous tag on item 1, user 0's tag on item 2 (never rated), user 1 on item 1
    assert list(zip(tags.user, tags.item, tags.tag)) == [(-1, 1, 1), (0, 2, 0), (1, 1, 1)]
    assert tags.vocabulary is dataset.item_attributes.tags.vocabulary
    assert out.reviews.text == ("ok", "fine")
    assert out.interactions is dataset.interactions  # the protocol decides interactions
    assert filter_side_sources(dataset, np.zeros(0, np.int64)) is dataset


def test_visible_pairs_and_find_leaks():
    dataset = _dataset()
    seen = visible_pairs(dataset)
    assert list(seen["tags"]) == list(np.unique(pair_keys([0, 0, 1, 1], [1, 2, 3, 1], 4)))
    assert list(seen["reviews"]) == [0, 1, 6]
    valid, test = Pairs([0], [1], [1.0]), Pairs([1], [3], [0.0])
    train = Pairs([0, 1], [0, 2], [1.0, 1.0])
    leaky = Split("hand", "ctr", 0, train, valid, test, dataset)
    assert find_leaks(leaky) == {"interactions": 1, "tags": 2, "reviews": 1}
    clean = filter_side_sources(dataset.replace(interactions=Interactions([0, 1], [0, 2])),
                                heldout_keys(4, valid, test))
    fixed = Split("hand", "ctr", 0, train, valid, test, clean)
    assert find_leaks(fixed) == {"interactions": 0, "tags": 0, "reviews": 0}


def test_sources_without_user_pairs_are_untouched():
    dataset = _dataset()
    anonymous = Tags(item=[1, 2], tag=[0, 1], vocabulary=Vocabulary(("a", "b")))
    plain = dataset.replace(item_attributes=ItemAttributes(tags=anonymous), reviews=None)
    assert filter_side_sources(plain, np.array([1, 2, 3])) is plain
    assert set(visible_pairs(plain)) == {"interactions"}
