"""Reranker: a retrieval model's top-N reordered by a (tiny, LoRA-trained) cross-encoder, and
benchmarks/rerank.py end to end on the synthetic world."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from fusionrec.data.protocols import make_split
from fusionrec.data.synthetic import generate
from fusionrec.models.rerank import RerankConfig, Reranker
from training_support import RUNNER

REPO = Path(__file__).resolve().parents[1]
N = 12


def _cross_encoder_params(tiny_bert: Path) -> dict:
    return {"model": str(tiny_bert), "feature_model": "hashing:16", "mode": "lora",
            "max_length": 64, "item_budget": 24, "epochs": 1, "batch_size": 16,
            "valid_rows": 16, "precision": "fp32", "progress": False, "num_threads": 1,
            "lr": 5e-3}


@pytest.fixture(scope="module")
def stages(tiny_bert):
    import dataclasses

    from fusionrec.models.baselines.bpr_mf import BPRMF
    from fusionrec.models.cross_encoder.recommender import CrossEncoderRecommender

    world = generate(n_users=50, n_items=60, n_interactions=900, seed=4)
    split = make_split(world, "topk-random", seed=0)
    retriever = BPRMF(embedding_dim=8, trainer={"epochs": 3, "batch_size": 256, "lr": 0.02,
                                                "num_threads": 1}, runner=RUNNER).fit(split)
    # a few training positives (the cross-encoder adds one sampled negative each)
    small = dataclasses.replace(split, train=split.train.take(np.arange(0, len(split.train), 8)),
                                valid=split.valid.take(np.arange(min(16, len(split.valid)))))
    cross_encoder = CrossEncoderRecommender(**_cross_encoder_params(tiny_bert),
                                            runner=RUNNER).fit(small)
    return split, retriever, cross_encoder


def test_reordering_stays_within_the_retrieved_candidates(stages):
    split, retriever, cross_encoder = stages
    users = np.arange(20)
    reranker = Reranker(retriever, cross_encoder, candidates=N)
    retrieved, _ = retriever.recommend(users, k=N)
    items, scores = reranker.recommend(users, k=N)
    assert items.shape == scores.shape == (len(users), N)
    for row in range(len(users)):
        assert sorted(items[row]) == sorted(retrieved[row])        # a permutation of the N
    top, _ = reranker.recommend(users, k=5)
    for row in range(len(users)):
        assert set(top[row]) <= set(retrieved[row])                # nothing from outside N
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_blend_zero_follows_the_cross_encoder_and_one_the_retrieval(stages):
    split, retriever, cross_encoder = stages
    users = np.arange(15)
    retrieved, _ = retriever.recommend(users, k=N)
    items, _ = Reranker(retriever, cross_encoder, candidates=N).recommend(users, k=N)
    moved = 0
    for row, user in enumerate(users):
        logits = cross_encoder.score(np.full(N, user), items[row])
        assert np.all(np.diff(logits) <= 1e-6)                     # best cross-encoder first
        moved += int(np.any(items[row] != retrieved[row]))
    assert moved > 0                                               # it did reorder
    kept, _ = Reranker(retriever, cross_encoder, candidates=N, blend=1.0).recommend(users, k=N)
    np.testing.assert_array_equal(kept, retrieved)
    half, _ = Reranker(retriever, cross_encoder, candidates=N, blend=0.5).recommend(users, k=N)
    for row in range(len(users)):
        assert sorted(half[row]) == sorted(retrieved[row])


def test_seen_items_are_excluded_unless_asked(stages):
    split, retriever, cross_encoder = stages
    seen = {(int(u), int(i)) for u, i in zip(split.train.user, split.train.item)}
    users = np.arange(split.features.n_users)
    reranker = Reranker(retriever, cross_encoder, candidates=N)
    items, scores = reranker.recommend(users, k=8)
    assert not {(int(u), int(i)) for u, row in zip(users, items) for i in row} & seen
    with_seen, _ = reranker.recommend(users[:10], k=N, exclude_seen=False)
    assert {(int(u), int(i)) for u, row in zip(users[:10], with_seen) for i in row} & seen


def test_score_matches_recommend_inside_the_candidates_and_is_lowest_outside(stages):
    split, retriever, cross_encoder = stages
    reranker = Reranker(retriever, cross_encoder, candidates=N, blend=0.3)
    users = np.array([2, 7])
    items, scores = reranker.recommend(users, k=N)
    pair_users = np.repeat(users, N)
    np.testing.assert_allclose(reranker.score(pair_users, items.ravel()), scores.ravel())
    outside = np.setdiff1d(np.arange(split.features.n_items), items[0])[:5]
    got = reranker.score(np.full(len(outside), 2), outside)
    assert np.all(got == 0.0) and scores.min() > 0.0


def test_more_than_n_pads_and_fit_fits_both_stages(stages, tiny_bert):
    from fusionrec.models.baselines.popularity import Popularity
    from fusionrec.models.cross_encoder.recommender import CrossEncoderRecommender

    split, retriever, cross_encoder = stages
    items, scores = Reranker(retriever, cross_encoder, candidates=4).recommend(np.arange(3), k=6)
    assert np.all(items[:, 4:] == -1) and np.all(np.isneginf(scores[:, 4:]))
    assert np.all(items[:, :4] >= 0)
    import dataclasses

    small = dataclasses.replace(split, train=split.train.take(np.arange(0, len(split.train), 10)),
                                valid=split.valid.take(np.arange(8)))
    fresh = Reranker(Popularity(),
                     CrossEncoderRecommender(**_cross_encoder_params(tiny_bert), runner=RUNNER),
                     candidates=5)
    assert fresh.fit(small) is fresh
    assert fresh.recommend(np.arange(4), k=3)[0].shape == (4, 3)


@pytest.mark.parametrize("bad", [{"candidates": 0}, {"candidates": 2.5}, {"blend": 1.5},
                                 {"blend": -0.1}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError, match="rerank"):
        RerankConfig(**bad)


def test_benchmark_script_runs_on_synthetic_data(tmp_path, tiny_bert, monkeypatch, capsys):
    monkeypatch.setenv("FUSIONREC_CACHE", str(tmp_path / "cache"))
    spec = importlib.util.spec_from_file_location("rerank_bench", REPO / "benchmarks" /
                                                  "rerank.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    sets = [f"{k}={json.dumps(v)}" for k, v in _cross_encoder_params(tiny_bert).items()]
    out = tmp_path / "rerank.json"
    retrieval = REPO / "configs" / "quickstart-popularity.yaml"
    code = bench.main(["--retrieval-config", str(retrieval), "--candidates", "10",
                       "--pairs", "60", "--valid-pairs", "20", "--users", "12",
                       "--latency-users", "3", "--blend", "0", "1", "--out", str(out),
                       *[a for s in sets for a in ("--set", s)]])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["test_users"] == 12 and result["train_pairs"] == 120
    assert result["candidates"] == 10 and result["dataset"] == "synthetic"
    # blend 1 keeps the retrieval order: the same NDCG@10 as retrieval alone
    assert result["reranked"][1]["ndcg@10"] == pytest.approx(result["retrieval"]["ndcg@10"])
    assert result["latency"]["users"] == 3 and result["latency"]["rerank_ms_median"] > 0
    assert "reranked, blend 0" in capsys.readouterr().out
