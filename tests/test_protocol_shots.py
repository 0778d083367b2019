"""Generic k-shot option (``protocol.params.shots``) on protocols that do not draw shots
themselves, and ``shots: 0`` on ``fewshot-tallrec``."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.data.leakage import pair_keys
from fusionrec.data.manifest import read_manifest, write_manifest
from fusionrec.data.protocols import ProtocolError, make_split, protocol_params
from fusionrec.data.protocols.shots import recent_history
from fusionrec.data.schema import Dataset, Interactions, Vocabulary
from fusionrec.data.synthetic import generate


@pytest.fixture(scope="module")
def world():
    return generate(n_users=80, n_items=60, n_interactions=1500, seed=2)


def test_every_protocol_accepts_shots_and_history():
    assert protocol_params("ctr-kgcn")["shots"] is None
    assert protocol_params("topk-random")["history"] == 10
    assert protocol_params("fewshot-tallrec")["history"] == 10  # its own parameter


@pytest.mark.parametrize("protocol", ["ctr-kgcn", "topk-random"])
def test_train_is_cut_to_k_rows_and_held_out_parts_stay(world, protocol):
    full = make_split(world, protocol, seed=4)
    few = make_split(world, protocol, seed=4, shots=12, history=5)
    assert len(few.train) == 12 and few.params["shots"] == 12 and few.params["history"] == 5
    full_keys = set(pair_keys(full.train.user, full.train.item, world.n_items).tolist())
    assert set(pair_keys(few.train.user, few.train.item, world.n_items).tolist()) <= full_keys
    for part in ("valid", "test"):
        np.testing.assert_array_equal(few.part(part).item, full.part(part).item)
        np.testing.assert_array_equal(few.part(part).label, full.part(part).label)
    # the model's features hold the k rows' positives and nothing more
    pos = few.train.positives()
    inter = few.features.interactions
    assert sorted(pair_keys(inter.user, inter.item, world.n_items).tolist()) == \
        sorted(pair_keys(pos.user, pos.item, world.n_items).tolist())


def test_histories_are_the_users_training_items_without_the_row_itself(world):
    full = make_split(world, "ctr-kgcn", seed=1)
    few = make_split(world, "ctr-kgcn", seed=1, shots=30, history=4)
    train_pos = full.train.positives()
    by_user: dict[int, set] = {}
    for u, i in zip(train_pos.user.tolist(), train_pos.item.tolist()):
        by_user.setdefault(u, set()).add(i)
    for part in ("train", "valid", "test"):
        pairs = few.part(part)
        assert pairs.history_items.shape == (len(pairs), 4)
        for u, i, hist, labels in zip(pairs.user, pairs.item, pairs.history_items,
                                      pairs.history_labels):
            shown = hist[hist >= 0]
            assert int(i) not in shown.tolist()
            assert set(shown.tolist()) <= by_user.get(int(u), set())
            # as many entries as the user has training items other than this one, up to 4
            assert len(shown) == min(4, len(by_user.get(int(u), set()) - {int(i)}))
            assert np.all(labels[hist < 0] == 0)
    # a training positive keeps a full history although its own item is dropped from it
    pos = few.train.positives()
    rich = [r for r, u in enumerate(pos.user) if len(by_user[int(u)]) > 5]
    assert rich and all(np.all(pos.history_items[r] >= 0) for r in rich)


def test_recent_history_orders_by_time_and_labels_by_rating():
    ds = Dataset("t", Vocabulary(("a", "b")), Vocabulary(tuple("pqrst")),
                 Interactions(np.array([0, 0, 0, 1, 0]), np.array([0, 1, 2, 3, 4]),
                              rating=np.array([5., 1., 4., 2., 3.]),
                              timestamp=np.array([30, 10, 20, 5, 40])))
    items, labels = recent_history(ds, 3)
    np.testing.assert_array_equal(items, [[2, 0, 4], [-1, -1, 3]])  # oldest first
    np.testing.assert_array_equal(labels, [[1, 1, 0], [0, 0, 0]])   # rating > 3


def test_same_params_rebuild_the_split_and_the_manifest_round_trips(world, tmp_path):
    few = make_split(world, "ctr-kgcn", seed=3, shots=20)
    again = make_split(world, "ctr-kgcn", seed=3, **few.params)
    for part in ("train", "valid", "test"):
        np.testing.assert_array_equal(again.part(part).item, few.part(part).item)
        np.testing.assert_array_equal(again.part(part).history_items,
                                      few.part(part).history_items)
    write_manifest(few, tmp_path)
    loaded = read_manifest(tmp_path, world)
    np.testing.assert_array_equal(loaded.train.history_items, few.train.history_items)
    np.testing.assert_array_equal(loaded.features.interactions.item,
                                  few.features.interactions.item)


def test_zero_shots_and_no_history(world):
    zero = make_split(world, "ctr-kgcn", seed=0, shots=0)
    assert len(zero.train) == 0 and len(zero.features.interactions) == 0
    assert zero.test.history_items is not None
    bare = make_split(world, "topk-random", seed=0, shots=5, history=0)
    assert len(bare.train) == 5 and bare.train.history_items is None
    tallrec = generate(n_users=30, n_items=40, n_interactions=600, seed=1)
    records = make_split(tallrec, "fewshot-tallrec", seed=0, shots=0, n_records=200)
    assert len(records.train) == 0 and len(records.test) > 0


def test_bad_shot_parameters_are_refused(world):
    with pytest.raises(ProtocolError, match="shots must be"):
        make_split(world, "ctr-kgcn", shots=10 ** 6)
    with pytest.raises(ProtocolError, match="shots must be"):
        make_split(world, "ctr-kgcn", shots=-1)
    with pytest.raises(ProtocolError, match="history must be"):
        make_split(world, "ctr-kgcn", shots=3, history=-2)
    with pytest.raises(ProtocolError, match="only applies with shots"):
        make_split(world, "topk-random", history=3)
