"""links-random on the real HetRec 2011 Last.fm friendships (slow tier): the published count,
a leak-free split, and the neighbourhood baselines in their expected order."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from fusionrec.data.leakage import find_leaks
from fusionrec.data.protocols import make_split
from fusionrec.evaluation.evaluate import evaluate
from fusionrec.models.links.neighbours import AdamicAdar, CommonNeighbours, FriendDegree

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lastfm():
    from fusionrec.data.load import load_dataset

    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    root = Path(os.environ.get("FUSIONREC_DATA") or default)
    if not (root / "lastfm-hetrec2011").is_dir():
        pytest.skip(f"real data not found at {root}")
    return load_dataset("lastfm", data_dir=root)[0]


def test_lastfm_friendships_split_8_1_1_without_leaks(lastfm):
    split = make_split(lastfm, "links-random", seed=0)
    # 12,717 undirected friendships (published: 25,434 directed pairs)
    sizes = [len(split.part(p)) // 2 for p in ("train", "valid", "test")]
    assert sum(sizes) == 12717 and sizes[1] == sizes[2] == 1271
    assert find_leaks(split) == {"social": 0}
    keys = lambda p: set((p.user * lastfm.n_users + p.item).tolist())  # noqa: E731
    reversed_test = set((split.test.item * lastfm.n_users + split.test.user).tolist())
    assert not reversed_test & keys(split.train)
    assert len(split.features.social) == sizes[0]


def test_neighbourhood_baselines_beat_degree_on_lastfm(lastfm):
    split = make_split(lastfm, "links-random", seed=0)
    ndcg = {cls.name: evaluate(cls().fit(split), split, "valid", ks=(10,))["ndcg@10"]
            for cls in (FriendDegree, CommonNeighbours, AdamicAdar)}
    assert ndcg["adamic-adar"] > ndcg["common-neighbours"] > 3 * ndcg["friend-degree"]
    assert np.isfinite(list(ndcg.values())).all()
