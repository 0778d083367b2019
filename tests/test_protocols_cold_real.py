"""cold-items / cold-users on every real preset (slow tier): no held-out pair visible, nothing
users produced about a cold entity in the features, and the texts a model reads for cold
items and users built from pre-interaction content only."""

from __future__ import annotations

import numpy as np
import pytest
from test_protocols_cold import _content_only, clean_cold_split
from test_protocols_real import PRESETS, _dataset

from fusionrec.data.manifest import read_manifest, write_manifest
from fusionrec.data.protocols import make_split
from fusionrec.text.items import ItemTextualiser
from fusionrec.text.users import UserTextualiser

pytestmark = pytest.mark.slow
SAMPLE = 300  # cold entities whose texts are rendered per case (all are checked by the tables)


@pytest.mark.parametrize("preset", PRESETS)
def test_cold_items_leak_nothing_on_real_presets(preset):
    dataset = _dataset(preset)
    split = clean_cold_split(dataset, "cold-items", seed=1)
    cold = split.cold.entities
    assert len(split.test) and not np.isin(split.train.item, cold).any()
    seen, before = ItemTextualiser(split.features), ItemTextualiser(_content_only(dataset))
    for item in cold[:SAMPLE]:
        assert seen.text(int(item)) == before.text(int(item)), (preset, item)


@pytest.mark.parametrize("user_shots", [0, 3])
@pytest.mark.parametrize("preset", PRESETS)
def test_cold_users_leak_nothing_on_real_presets(preset, user_shots):
    dataset = _dataset(preset)
    split = clean_cold_split(dataset, "cold-users", seed=1, user_shots=user_shots)
    cold = split.cold.entities
    assert len(split.test)
    shots = np.bincount(split.train.user, minlength=dataset.n_users)[cold]
    assert shots.max() <= user_shots
    if user_shots == 0:
        texts = UserTextualiser(split.features)
        for user in cold[:SAMPLE]:
            user = int(user)
            assert texts.history.sections(user, 1) == []
            for section in (texts.tags.user_section(user, 2),
                            texts.reviews.user_section(user, 4)):
                assert section is None or not section.parts
    assert split.features.user_attributes is dataset.user_attributes
    assert split.features.social is dataset.social


@pytest.mark.parametrize("protocol", ["cold-items", "cold-users"])
def test_cold_manifest_round_trip_on_ml100k(tmp_path, protocol):
    dataset = _dataset("ml-100k")
    split = make_split(dataset, protocol, seed=2)
    write_manifest(split, tmp_path)
    back = read_manifest(tmp_path, dataset)
    assert np.array_equal(back.cold.entities, split.cold.entities)
    assert np.array_equal(back.cold.candidates("test"), split.cold.candidates("test"))
    assert np.array_equal(back.features.interactions.item, split.features.interactions.item)
