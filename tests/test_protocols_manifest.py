"""Split manifests round-trip: rows, params and re-derived features are identical."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from test_protocols import FEWSHOT, tiny_dataset

from fusionrec.data.errors import DataError
from fusionrec.data.manifest import read_manifest, write_manifest
from fusionrec.data.protocols import PROTOCOLS, make_split


def _same_pairs(a, b):
    assert np.array_equal(a.user, b.user) and np.array_equal(a.item, b.item)
    assert np.array_equal(a.label, b.label)
    for name in ("history_items", "history_labels"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None and y is None) or np.array_equal(x, y)


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_manifest_round_trip(tmp_path, name):
    dataset = tiny_dataset()
    split = make_split(dataset, name, seed=4, **(FEWSHOT if name == "fewshot-tallrec" else {}))
    rows_file = write_manifest(split, tmp_path / "run")
    assert rows_file == tmp_path / "run" / "split.parquet"
    meta = json.loads((tmp_path / "run" / "split.json").read_text())
    assert meta["protocol"] == name and meta["seed"] == 4
    assert meta["rows"] == {p: len(split.part(p)) for p in ("train", "valid", "test")}
    table = pq.read_table(rows_file)
    assert set(table.column("user").to_pylist()) <= set(dataset.users.ids)  # raw ids on disk

    back = read_manifest(tmp_path / "run", dataset)
    assert (back.protocol, back.task, back.seed) == (split.protocol, split.task, split.seed)
    assert back.params == split.params
    for part in ("train", "valid", "test"):
        _same_pairs(back.part(part), split.part(part))
    f, g = back.features, split.features
    for col in ("user", "item", "timestamp"):
        assert np.array_equal(getattr(f.interactions, col), getattr(g.interactions, col))
    assert f.reviews.text == g.reviews.text
    assert np.array_equal(f.item_attributes.tags.user, g.item_attributes.tags.user)


def test_manifest_detects_edits_and_foreign_datasets(tmp_path):
    dataset = tiny_dataset()
    split = make_split(dataset, "topk-random", seed=0)
    rows_file = write_manifest(split, tmp_path / "m.parquet")
    assert (tmp_path / "m.json").is_file()
    table = pq.read_table(rows_file)
    labels = table.column("label").to_numpy().copy()
    labels[0] = 0.0
    pq.write_table(table.set_column(3, "label", [labels]), rows_file)
    with pytest.raises(DataError, match="sha256"):
        read_manifest(rows_file, dataset)

    write_manifest(split, tmp_path / "m.parquet")
    other = tiny_dataset(n_users=3)
    with pytest.raises(DataError, match="is not in the dataset"):
        read_manifest(tmp_path / "m.json", other)
    with pytest.raises(DataError, match="not found"):
        read_manifest(tmp_path / "missing", dataset)
