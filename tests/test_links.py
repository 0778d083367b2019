"""People you may know: the links-random protocol, its leak-freedom, the neighbourhood
baselines on a hand-computed graph, and user→user evaluation on a hand-made ranking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fusionrec.data.leakage import find_leaks, pair_keys
from fusionrec.data.protocols import ProtocolError, make_split
from fusionrec.data.schema import Dataset, Interactions, Social, Vocabulary
from fusionrec.data.split import Pairs, Split
from fusionrec.data.synthetic import generate
from fusionrec.evaluation.evaluate import evaluate
from fusionrec.models.links.neighbours import AdamicAdar, CommonNeighbours, FriendDegree
from training_support import RUNNER


@pytest.fixture(scope="module")
def world():
    return generate(n_users=80, n_items=40, n_interactions=1200, seed=3)


def _undirected(pairs: Pairs) -> set[tuple[int, int]]:
    return {(min(a, b), max(a, b)) for a, b in zip(pairs.user.tolist(), pairs.item.tolist())}


def _directed(pairs: Pairs) -> set[tuple[int, int]]:
    return set(zip(pairs.user.tolist(), pairs.item.tolist()))


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_parts_partition_the_friendships_with_both_directions_together(world, seed):
    split = make_split(world, "links-random", seed=seed)
    assert (split.protocol, split.task) == ("links-random", "links")
    parts = [split.train, split.valid, split.test]
    every = {(min(a, b), max(a, b)) for a, b in zip(world.social.source, world.social.target)
             if a != b}
    assert set().union(*map(_undirected, parts)) == every
    for i, part in enumerate(parts):
        pairs = _directed(part)
        assert {(b, a) for a, b in pairs} == pairs  # both directions, same part
        assert len(pairs) == len(part) == 2 * len(_undirected(part))  # no duplicates
        assert all(a != b for a, b in pairs)
        for other in parts[i + 1:]:
            assert not _undirected(part) & _undirected(other)
    # (a -> b) held out never appears as (b -> a) in train
    train = _directed(split.train)
    for held in (split.valid, split.test):
        assert not {(b, a) for a, b in _directed(held)} & train
    n = len(every)
    assert len(_undirected(split.valid)) == len(_undirected(split.test)) == math.floor(0.1 * n)


def test_seeded_and_reproducible(world):
    a, b = (make_split(world, "links-random", seed=2) for _ in range(2))
    c = make_split(world, "links-random", seed=3)
    assert _directed(a.test) == _directed(b.test)
    assert _directed(a.test) != _directed(c.test)
    assert a.params == {"ratios": [0.8, 0.1, 0.1]}


def test_features_hold_train_friendships_only(world):
    split = make_split(world, "links-random", seed=0)
    assert find_leaks(split) == {"social": 0}
    social = split.features.social
    assert not social.directed
    assert _undirected(Pairs(social.source, social.target, np.ones(len(social)))) == \
        _undirected(split.train)
    # every other source is the dataset's own: listens are not what is held out here
    assert split.features.interactions is world.interactions
    assert split.features.item_text is world.item_text


def test_find_leaks_counts_a_heldout_friendship_in_either_direction(world):
    split = make_split(world, "links-random", seed=0)
    a, b = int(split.test.user[0]), int(split.test.item[0])
    social = split.features.social
    # the held-out pair put back the other way round (b -> a) is still a leak
    leaky = split.features.replace(social=Social(np.r_[social.source, b],
                                                 np.r_[social.target, a]))
    bad = Split(split.protocol, split.task, 0, split.train, split.valid, split.test, leaky)
    assert find_leaks(bad) == {"social": 2}  # (a, b) and (b, a) are both visible


def test_social_consumers_see_train_friends_only(world):
    """Social propagation, friend counts in user texts, the link models' graphs and the
    friends a served run explains with are all built from ``split.features``: none of them
    holds a held-out friendship."""
    from fusionrec.models.fusion.sources import TrainingGraph
    from fusionrec.models.links.graph import friend_matrix
    from fusionrec.text.social import SocialText

    split = make_split(world, "links-random", seed=4)
    held = {(int(a), int(b)) for part in (split.valid, split.test)
            for a, b in zip(part.user, part.item)}
    train = _directed(split.train)
    graph = TrainingGraph.from_features(split.features, with_social=True)
    s, t = graph.social.source.tolist(), graph.social.target.tolist()
    assert not {(a, b) for a, b in zip(s + t, t + s)} & held
    adjacency = friend_matrix(split.features).tocoo()
    assert set(zip(adjacency.row.tolist(), adjacency.col.tolist())) == train
    # the friends a served run explains with (and people's mutual friends) come from here
    from fusionrec.serving.updates import _friend_matrix

    served = _friend_matrix(split.features.social, world.n_users).tocoo()
    assert set(zip(served.row.tolist(), served.col.tolist())) == train
    text = SocialText(split.features.social, world.interactions, world.items.ids,
                      world.n_users)
    for user in range(world.n_users):
        friends = set(text.target[text.friends.rows(user)].tolist())
        assert friends == {b for a, b in train if a == user}
        section = text.section(user, 3)
        count = len(friends)
        assert (section is None) == (count == 0)
        if count:  # "Has N friends": the count of training friends, not all friends
            assert section.label.startswith(f"Has {count} friend")


def test_protocol_needs_a_social_source(world):
    with pytest.raises(ProtocolError, match="no social source"):
        make_split(world.without("social"), "links-random")


# -- the baselines on a hand-computed graph ------------------------------------------------
# 0-1, 0-2, 1-2, 1-3, 2-3, 3-4 (+ isolated 5): degrees 2, 3, 3, 3, 1, 0.
EDGES = [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (3, 4)]


def _toy_split(train_edges=EDGES, valid=(), test=((0, 3),)) -> Split:
    def both(edges):
        a = [x for x, _ in edges] + [y for _, y in edges]
        b = [y for _, y in edges] + [x for x, _ in edges]
        return Pairs(np.array(a, dtype=np.int64), np.array(b, dtype=np.int64),
                     np.ones(len(a), np.float32))

    users = Vocabulary(tuple(f"u{i}" for i in range(6)))
    dataset = Dataset("toy", users, Vocabulary(("i0",)), Interactions([0], [0]),
                      social=Social([a for a, _ in train_edges], [b for _, b in train_edges]))
    return Split("links-random", "links", 0, both(train_edges), both(valid), both(test),
                 dataset)


def test_common_neighbours_and_adamic_adar_by_hand():
    split = _toy_split()
    cn, aa = CommonNeighbours().fit(split), AdamicAdar().fit(split)
    users, others = np.array([0, 0, 1, 4, 0]), np.array([3, 4, 4, 2, 5])
    assert cn.score(users, others).tolist() == [2, 0, 1, 1, 0]
    # AA(0, 3): shared friends 1 and 2, degree 3 each -> 2 / ln 3
    np.testing.assert_allclose(aa.score(users, others),
                               [2 / math.log(3), 0, 1 / math.log(3), 1 / math.log(3), 0])
    items, scores = cn.recommend(np.array([0, 4]), k=2)
    assert items[0, 0] == 3 and scores[0, 0] == 2  # 1 and 2 are friends already, 0 is self
    assert 4 not in items[0] or scores[0, list(items[0]).index(4)] == 0
    assert set(items[1]) == {1, 2}  # 4's friend-of-friend candidates; 3 (friend) skipped
    assert FriendDegree().fit(split).recommend(np.array([4]), k=2)[0][0].tolist() == [1, 2]


def test_adamic_adar_discounts_a_shared_hub():
    # 0 shares hub 1 (degree 5) with 2, and quiet 6 (degree 2) with 3: CN ties, AA prefers 3
    edges = [(0, 1), (1, 2), (1, 3), (1, 4), (1, 5), (0, 6), (6, 3)]
    split = _toy_split(edges, test=((0, 2),))
    split = Split(split.protocol, "links", 0, split.train, split.valid, split.test,
                  split.features.replace(users=Vocabulary(tuple(f"u{i}" for i in range(7)))))
    cn, aa = CommonNeighbours().fit(split), AdamicAdar().fit(split)
    assert cn.score(np.array([0, 0]), np.array([2, 3])).tolist() == [1, 2]
    one_hub = aa.score(np.array([0]), np.array([2]))[0]
    assert one_hub == pytest.approx(1 / math.log(5))
    assert aa.recommend(np.array([0]), k=1)[0][0, 0] == 3


def test_neighbour_models_round_trip(tmp_path):
    split = _toy_split()
    model = AdamicAdar().fit(split)
    model.save(tmp_path)
    back = AdamicAdar.load(tmp_path)
    users = np.arange(6)
    assert np.array_equal(model.recommend(users, 3)[0], back.recommend(users, 3)[0])


def test_link_models_refuse_item_splits(world):
    with pytest.raises(ValueError, match="task 'links'"):
        CommonNeighbours().fit(make_split(world, "topk-random", seed=0))


# -- evaluation: full ranking over users ----------------------------------------------------
class _FixedLists:
    """Returns preset user lists (what a link model's ``recommend`` hands evaluation)."""

    def __init__(self, lists: dict[int, list[int]]) -> None:
        self.lists = lists

    def recommend(self, users, k=10, exclude_seen=True):
        rows = [self.lists[int(u)][:k] + [-1] * (k - len(self.lists[int(u)][:k])) for u in users]
        return np.array(rows, dtype=np.int64), np.zeros((len(users), k), np.float32)


def test_links_evaluation_ranks_users_and_skips_valid_friends_on_test():
    split = _toy_split(valid=((0, 4),), test=((0, 5),))
    # user 0: valid friend 4 first (dropped on test), then 3, then 5 -> 5 at rank 2
    # user 5: 2 then 0 at rank 2 (4 is not a valid friend of 5, so nothing is dropped)
    model = _FixedLists({0: [4, 3, 5, 1], 5: [2, 0, 1, 3], 4: [0, 1, 2, 3]})
    test = evaluate(model, split, "test", ks=(1, 2))
    assert test["hr@1"] == 0.0
    assert test["ndcg@2"] == pytest.approx(1 / math.log2(3))
    assert test["recall@2"] == 1.0 and test["mrr@2"] == 0.5
    # coverage is over users (6), not items (1)
    assert test["coverage@2"] == pytest.approx(len({3, 5, 2, 0}) / 6)
    valid = evaluate(model, split, "valid", ks=(1,))
    assert valid["hr@1"] == 1.0  # 0 -> 4 and 4 -> 0 both at rank 1


def test_links_manifest_round_trip(tmp_path, world):
    from fusionrec.data.manifest import read_manifest, write_manifest

    split = make_split(world, "links-random", seed=5)
    write_manifest(split, tmp_path)
    back = read_manifest(tmp_path, world)
    assert back.task == "links"
    for part in ("train", "valid", "test"):
        assert _directed(back.part(part)) == _directed(split.part(part))
    assert np.array_equal(pair_keys(back.features.social.source, back.features.social.target,
                                    world.n_users),
                          pair_keys(split.features.social.source, split.features.social.target,
                                    world.n_users))


# -- end to end: a link run folder through the CLI --------------------------------------------
@pytest.mark.parametrize("model, extra", [
    ("adamic-adar", []),
    ("fusion-links", ["--set", "trainer.epochs=2", "--set", "model.params.embedding_dim=8",
                      "--set", "model.params.sources=[interactions, social]"]),
])
def test_link_run_trains_evaluates_and_recommends_people(tmp_path, capsys, model, extra):
    import json
    from pathlib import Path

    from fusionrec.cli.main import main
    from fusionrec.training import artifacts

    config = Path(__file__).resolve().parents[1] / "configs" / (
        "lastfm-links-adamic-adar.yaml" if model == "adamic-adar" else "lastfm-links.yaml")
    out = tmp_path / "run"
    assert main(["train", "-c", str(config), "--out", str(out), "--set", "data.preset=synthetic",
                 "--set", "trainer.num_threads=1", "--no-progress", *extra]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["protocol"]["task"] == "links" and manifest["model"] == model
    # the reloaded run scores exactly what training reported (manifest read with user ids)
    metrics = tmp_path / "metrics.json"
    assert main(["evaluate", str(out), "--json", str(metrics)]) == 0
    assert json.loads(metrics.read_text())["metrics"] == pytest.approx(
        manifest["metrics"]["test"])
    capsys.readouterr()
    assert main(["recommend", str(out), "--user", "u3", "-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(" user u" in line for line in lines)
    _, _, loaded = artifacts.open_run(out)
    users, _ = artifacts.load_vocabularies(out)
    me = users.index("u3")
    excluded = set(loaded.seen_.items_of(me).tolist())
    assert me in excluded  # the user themself is never recommended, nor a training friend
    shown = {users.index(line.split(" user ")[1].split()[0]) for line in lines}
    assert not shown & excluded


def test_fusion_links_hides_each_folds_friendships_and_round_trips(world, tmp_path):
    from fusionrec.models.fusion.links import FusionLinks

    split = make_split(world, "links-random", seed=0)
    model = FusionLinks(**{**FusionLinks.SMOKE_PARAMS, "folds": 3,
                           "sources": ["interactions", "social"]}, runner=RUNNER).fit(split)
    train = _directed(split.train)
    supervised = set()
    for (source, target), graph in zip(model._fold_edges, model._fold_graphs):
        s, t = graph.social.source.tolist(), graph.social.target.tolist()
        message = set(zip(s + t, t + s))
        targets = set(zip(source.tolist(), target.tolist()))
        assert message <= train and targets <= train
        assert not message & targets  # a training pair is never joined by its own edge
        supervised |= targets
    assert supervised == train  # every training friendship is a target in one fold
    assert model.prior_weight() != 1.0  # the prior's weight was trained
    model.save(tmp_path)
    back = FusionLinks.load(tmp_path)
    users = np.arange(world.n_users)
    assert np.array_equal(model.recommend(users, 5)[0], back.recommend(users, 5)[0])
    assert back.prior_weight() == pytest.approx(model.prior_weight())
    with pytest.raises(ValueError, match="task 'links'"):
        FusionLinks(**FusionLinks.SMOKE_PARAMS, runner=RUNNER).fit(
            make_split(world, "topk-random", seed=0))
