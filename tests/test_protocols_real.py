"""Protocols on the real public datasets (slow tier): published sizes, TALLRec's exact test
set, and no held-out pair visible through any source, for every protocol and preset."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np
import pytest

from fusionrec.data.leakage import find_leaks
from fusionrec.data.protocols import PROTOCOLS, ProtocolError, make_split
from fusionrec.data.protocols.topk_random import recbole_counts

pytestmark = pytest.mark.slow

PRESETS = ("lastfm", "lastfm-kg", "ml-100k", "amazon-instruments")


def _data_dir() -> Path:
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    root = Path(os.environ.get("FUSIONREC_DATA") or default)
    if not root.is_dir():
        pytest.skip(f"real data not found at {root}")
    return root


@functools.lru_cache(maxsize=None)
def _load(preset: str):
    try:
        from fusionrec.data.load import load_dataset
    except ImportError:
        pytest.skip("fusionrec.data.load is not available yet")
    dataset, _report = load_dataset(preset, _data_dir())
    return dataset


def _dataset(preset: str):
    _data_dir()
    return _load(preset)


def test_ctr_kgcn_reproduces_the_published_lastfm_sizes():
    dataset = _dataset("lastfm-kg")
    split = make_split(dataset, "ctr-kgcn", seed=0)
    parts = [split.train, split.valid, split.test]
    user = np.concatenate([p.user for p in parts])
    item = np.concatenate([p.item for p in parts])
    label = np.concatenate([p.label for p in parts])
    assert np.unique(user).size == 1872
    assert np.unique(item).size == 3846
    assert user.size == 42346 and int(label.sum()) == 21173
    assert [len(p) for p in parts] == [25408, 8469, 8469]  # KGCN: int(0.2 n) valid and test
    assert sum(find_leaks(split).values()) == 0


def _quoted(titles) -> str:
    return ", ".join(f'"{t}"' for t in titles)


def test_fewshot_tallrec_rebuilds_the_published_valid_and_test_sets():
    dataset = _dataset("ml-100k")
    title = dataset.item_text.fields["title"]
    split = make_split(dataset, "fewshot-tallrec", seed=0, shots=64)
    assert len(split.train) == 64
    for part in ("valid", "test"):
        records = json.loads((_data_dir() / "tallrec-ml100k" / f"{part}.json").read_text())
        pairs = split.part(part)
        assert len(pairs) == len(records) == 1000
        for row, record in enumerate(records):
            liked = [title[i] for i, lab in zip(pairs.history_items[row],
                                                pairs.history_labels[row]) if lab == 1]
            disliked = [title[i] for i, lab in zip(pairs.history_items[row],
                                                   pairs.history_labels[row]) if lab == 0]
            expected = (f"User Preference: {_quoted(liked)}\n"
                        f"User Unpreference: {_quoted(disliked)}\n"
                        f'Whether the user will like the target movie "{title[pairs.item[row]]}"?')
            assert record["input"] == expected, (part, row)
            assert (record["output"] == "Yes.") == (pairs.label[row] == 1), (part, row)
    # the few-shot features reveal only the 64 records' liked targets, without ratings
    assert len(split.features.interactions) == int(split.train.label.sum())
    assert split.features.interactions.rating is None


def test_topk_random_on_lastfm_follows_recbole_sizes():
    dataset = _dataset("lastfm")
    split = make_split(dataset, "topk-random", seed=0)
    parts = [split.train, split.valid, split.test]
    per_user = np.stack([np.bincount(p.user, minlength=dataset.n_users) for p in parts])
    expected = np.stack(recbole_counts(per_user.sum(axis=0), (0.8, 0.1, 0.1)))
    assert np.array_equal(per_user, expected)


def split_or_skip(preset: str, protocol: str, seed: int = 1):
    """``(dataset, split)`` of ``preset`` under ``protocol``; skips when the protocol does not
    apply to the preset (and only for that reason)."""
    dataset = _dataset(preset)
    try:
        return dataset, make_split(dataset, protocol, seed=seed)
    except ProtocolError as error:  # e.g. loo-temporal on data without timestamps
        assert any(word in str(error) for word in ("timestamps", "ratings", "history",
                                                   "social"))  # links-random: no friends
        pytest.skip(str(error))


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
@pytest.mark.parametrize("preset", PRESETS)
def test_no_heldout_pair_is_visible_on_real_presets(preset, protocol):
    _, split = split_or_skip(preset, protocol)
    assert len(split.test) > 0
    assert find_leaks(split) == {name: 0 for name in find_leaks(split)}


def test_manifest_round_trip_on_lastfm_kg(tmp_path):
    from fusionrec.data.manifest import read_manifest, write_manifest

    dataset = _dataset("lastfm-kg")
    split = make_split(dataset, "ctr-kgcn", seed=2)
    write_manifest(split, tmp_path)
    back = read_manifest(tmp_path, dataset)
    for part in ("train", "valid", "test"):
        a, b = split.part(part), back.part(part)
        assert np.array_equal(a.user, b.user) and np.array_equal(a.item, b.item)
        assert np.array_equal(a.label, b.label)
    assert np.array_equal(back.features.interactions.item, split.features.interactions.item)
