"""Explanation providers on hand-built data with known answers, and on a trained run."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from serving_support import trained_run

from fusionrec.data.schema import KnowledgeGraph, Vocabulary
from fusionrec.explain.attributes import AttributeOverlap
from fusionrec.explain.friends import friends_who_interacted
from fusionrec.explain.kg_paths import KGPathFinder
from fusionrec.explain.sources import source_contributions
from fusionrec.models.fusion.model import FusionScorer
from fusionrec.models.fusion.space import FusedSpace


def _kg() -> KnowledgeGraph:
    """Items 0-3 and 5 on entities 0-3 and 17. Songs 0 and 1 share a rare artist; 0 and 2 share
    only the genre, which many entities carry; the artist has a label, which a producer (item
    5's entity) works with; 3 is isolated; item 4 has no entity."""
    names = ["Song 0", "Song 1", "Song 2", "Song 3", "Rare Artist", "Rock", "Label"]
    names += [f"filler {i}" for i in range(10)] + ["Producer"]
    ids = [f"e{i}" for i in range(len(names))]
    triples = [(0, 0, 4), (1, 0, 4), (0, 1, 5), (2, 1, 5), (4, 2, 6), (17, 2, 6)]
    triples += [(7 + i, 1, 5) for i in range(10)]  # the genre is a hub
    head, rel, tail = (np.array(c) for c in zip(*triples))
    return KnowledgeGraph(head, rel, tail, Vocabulary(tuple(ids)),
                          Vocabulary(("artist", "genre", "label")),
                          link_item=np.array([0, 1, 2, 3, 5]),
                          link_entity=np.array([0, 1, 2, 3, 17]), entity_names=tuple(names))


def _hops(path) -> list[tuple[str, str]]:
    return [(h.relation, h.entity) for h in path.hops]


def test_kg_paths_prefer_specific_entities():
    finder = KGPathFinder(_kg())
    (artist,) = finder.paths(np.array([0]), 1)
    assert artist.source_item == 0
    assert _hops(artist) == [("artist", "Rare Artist"), ("artist", "Song 1")]
    (genre,) = finder.paths(np.array([0]), 2)
    assert _hops(genre) == [("genre", "Rock"), ("genre", "Song 2")]
    assert artist.score > genre.score  # the rare artist beats the hub genre


def test_kg_paths_three_edges_at_most():
    finder = KGPathFinder(_kg())
    (long,) = finder.paths(np.array([5]), 1)
    assert _hops(long) == [("label", "Label"), ("label", "Rare Artist"), ("artist", "Song 1")]
    assert long.score < finder.paths(np.array([0]), 1)[0].score  # longer ranks lower
    # Song 2 is four edges from Song 1 (via Rock, Song 0, Rare Artist): no path from it.
    assert [p.source_item for p in finder.paths(np.array([0, 2, 5]), 1)] == [0, 5]
    assert finder.paths(np.array([1]), 2) == ()


def test_kg_paths_none():
    finder = KGPathFinder(_kg())
    assert finder.paths(np.array([0, 1, 2]), 3) == ()  # isolated entity
    assert finder.paths(np.array([0]), 4) == ()  # item without an entity
    assert finder.paths(np.array([1]), 1) == ()  # the item itself is no evidence
    assert finder.paths(np.array([4]), 1) == ()  # liked item without an entity


def test_friends_who_interacted():
    histories = {1: np.array([2, 5, 9]), 2: np.array([1, 3]), 3: np.array([5])}
    evidence = friends_who_interacted(np.array([1, 2, 3]), 5, histories.__getitem__)
    assert evidence.friends == (1, 3) and evidence.n_friends == 3
    assert friends_who_interacted(np.array([1, 2, 3]), 4, histories.__getitem__) is None
    assert friends_who_interacted(np.array([], dtype=np.int64), 5, histories.__getitem__) is None


def test_shared_attributes_count_liked_items():
    features = ("genre=rock", "genre=jazz", "tag:loud", "tag:calm")
    bag = sp.csr_matrix(np.array([[1, 0, 1, 0],    # item 0: rock, loud
                                  [1, 0, 0, 1],    # item 1: rock, calm
                                  [0, 1, 0, 1],    # item 2: jazz, calm
                                  [1, 0, 1, 0]]))  # item 3: rock, loud
    overlap = AttributeOverlap(bag, features)
    shared = overlap.shared(np.array([0, 1, 2]), 3)
    assert [(a.feature, a.n_liked, a.examples) for a in shared] == [
        ("genre=rock", 2, (0, 1)), ("tag:loud", 1, (0,))]
    assert overlap.shared(np.array([2]), 3) == ()
    assert overlap.shared(np.array([0]), 99) == ()  # items created after training


def test_source_contributions_are_exact_for_concat_retrieval():
    torch.manual_seed(0)
    scorer = FusionScorer(3, 4, n_items=5, fusion="concat", heads=("retrieval",))
    with torch.no_grad():
        scorer.retrieval.item_bias.copy_(torch.arange(5.0))
    space = FusedSpace(scorer, ("interactions", "item_text", "kg"))
    rng = np.random.default_rng(0)
    ux, ix = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(3, 4)).astype(
        np.float32)
    umask, imask = np.array([True, True, False]), np.array([True, True, True])
    score, contributions = source_contributions(space, (ux, umask), (ix, imask, 2.0))
    # Concat + dot product: the score is the sum over shared sources of u_s . i_s, plus b.
    per_source = (ux * ix).sum(1)
    assert score == pytest.approx(per_source[:2].sum() + 2.0, rel=1e-5)
    by_name = {c.source: c for c in contributions}
    assert by_name["interactions"].delta == pytest.approx(per_source[0], rel=1e-4)
    assert by_name["item_text"].delta == pytest.approx(per_source[1], rel=1e-4)
    assert by_name["kg"].delta == pytest.approx(0.0, abs=1e-6)  # absent for this user
    assert by_name["kg"].user_weight == 0.0 and by_name["kg"].item_weight == pytest.approx(1 / 3)
    assert [abs(c.delta) for c in contributions] == sorted((abs(c.delta) for c in contributions),
                                                           reverse=True)


def test_gated_fusion_weights_sum_to_one():
    torch.manual_seed(1)
    scorer = FusionScorer(3, 4, n_items=2, fusion="gated", heads=("retrieval",))
    space = FusedSpace(scorer, ("interactions", "social", "kg"))
    x = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    _, contributions = source_contributions(space, (x, np.array([True, True, False])),
                                            (x, np.ones(3, bool), 0.0))
    assert sum(c.user_weight for c in contributions) == pytest.approx(1.0, rel=1e-5)
    assert sum(c.item_weight for c in contributions) == pytest.approx(1.0, rel=1e-5)
    assert len({round(c.item_weight, 6) for c in contributions}) > 1  # learned, not uniform


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from fusionrec.serving.engine import Engine, load_run

    return Engine(load_run(trained_run(tmp_path_factory.getbasetemp())))


def test_explanations_on_a_trained_run_are_true(engine):
    user = 3
    items, scores = engine.recommend(user, 10)
    history = engine.user_view(user).history
    explanations = engine.explain(user, items)
    assert [e.item for e in explanations] == items.tolist()
    for explanation, score in zip(explanations, scores):
        assert explanation.score == pytest.approx(score, rel=1e-4)
        if explanation.friends is not None:
            for friend in explanation.friends.friends:
                assert friend in engine.updater.friends_of(user)
                assert explanation.item in engine.user_view(friend).history
        bag = engine.explainer.attributes.bag
        for shared in explanation.shared_attributes:
            column = engine.explainer.attributes.features.index(shared.feature)
            carriers = {int(i) for i in history if bag[i, column]}
            assert shared.n_liked == len(carriers) and set(shared.examples) <= carriers
            assert bag[explanation.item, column]
        for path in explanation.kg_paths:
            assert path.source_item in history and 2 <= len(path.hops) <= 3
    assert sum(e.friends is not None for e in explanations) >= 3
    assert sum(bool(e.kg_paths) for e in explanations) >= 5
