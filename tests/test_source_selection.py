"""Fusion ``sources: auto``: greedy forward selection of sources on the valid split."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.data.protocols import make_split
from fusionrec.data.synthetic import generate
from fusionrec.encoders.features import TextFeatures
from fusionrec.evaluation.evaluate import evaluate
from fusionrec.models.base import ModelError
from fusionrec.models.fusion.config import FusionConfig
from fusionrec.models.fusion.recommender import FusionRecommender
from fusionrec.models.fusion.selection import SourceSelection, Trained, greedy_sources
from fusionrec.models.params import ParamsError
from training_support import RUNNER

pytestmark = pytest.mark.usefixtures("one_torch_thread")

AVAILABLE = ("interactions", "item_text", "social", "kg")


def _fake(values: dict[tuple[str, ...], float], monitor: str = "ndcg@10"):
    calls = []

    def train(sources):
        calls.append(sources)
        return Trained(monitor, values[sources], epochs=3)

    return train, calls


def test_greedy_adds_the_best_source_while_valid_improves_and_counts_its_trainings():
    values = {("interactions",): 0.10,
              ("interactions", "item_text"): 0.12, ("interactions", "social"): 0.09,
              ("interactions", "kg"): 0.11,
              ("interactions", "item_text", "social"): 0.115,
              ("interactions", "item_text", "kg"): 0.125,
              ("interactions", "item_text", "social", "kg"): 0.124}
    train, calls = _fake(values)
    selection = greedy_sources(AVAILABLE, train)
    assert selection.chosen == ("interactions", "item_text", "kg")
    # base, 3 one-source additions, 2 two-source additions, then the last (no gain): stop
    assert calls == [("interactions",), ("interactions", "item_text"),
                     ("interactions", "social"), ("interactions", "kg"),
                     ("interactions", "item_text", "social"),
                     ("interactions", "item_text", "kg"),
                     ("interactions", "item_text", "social", "kg")]
    assert selection.trainings == len(calls) + 1  # the final training of the chosen set
    assert [c.valid for c in selection.candidates] == [values[c] for c in calls]


def test_greedy_keeps_interactions_alone_when_no_source_beats_it_ties_included():
    values = {("interactions",): 0.10, ("interactions", "item_text"): 0.10,
              ("interactions", "social"): 0.08, ("interactions", "kg"): 0.05}
    train, calls = _fake(values)
    selection = greedy_sources(AVAILABLE, train)
    assert selection.chosen == ("interactions",)
    assert len(calls) == 4  # 1 + (S - 1): the cheapest case


def test_greedy_follows_the_monitor_direction_for_losses():
    values = {("interactions",): 0.50, ("interactions", "social"): 0.40}
    train, _ = _fake(values, monitor="logloss")
    selection = greedy_sources(("interactions", "social"), train)
    assert selection.chosen == ("interactions", "social")  # a lower loss is better


def test_interactions_alone_needs_no_candidate_training():
    train, calls = _fake({})
    selection = greedy_sources(("interactions",), train)
    assert selection.chosen == ("interactions",) and calls == [] and selection.trainings == 1


def test_selection_round_trips_through_json():
    values = {("interactions",): 0.1, ("interactions", "social"): 0.2}
    selection = greedy_sources(("interactions", "social"), _fake(values)[0])
    assert SourceSelection.from_dict(selection.to_dict()) == selection


def test_config_accepts_auto_and_still_rejects_unknown_names():
    assert FusionConfig(sources="auto").sources == "auto"
    with pytest.raises(ParamsError, match="auto"):
        FusionConfig(sources=["interactions", "autox"])


# -- on a tiny world: a useful source is kept, one that only fits training is dropped ---------
FAST = {"embedding_dim": 16, "layers": 1, "social_layers": 1, "encoder": {"model": "hashing:16"},
        "hide_batch_edges": False,
        "trainer": {"epochs": 15, "batch_size": 256, "lr": 0.02, "patience": 3, "seed": 0}}


@pytest.fixture(scope="module")
def noisy_world():
    """Sparse interactions (about 6 a user), the world's friendships (80% share the user's
    favourite genre: useful) and an item text that is pure noise: a random vector per item.
    With ``hide_batch_edges: false`` that noise is worse than useless: each training positive
    finds its own vector in the user's text profile (the e-commerce failure); measured over
    2 worlds x 3 seeds, the noise cost 0.03-0.13 valid NDCG@10 and friends added 0.016-0.045."""
    world = generate(n_users=150, n_items=80, n_interactions=900, seed=5)
    world = world.without("user_attributes", "item_attributes", "kg", "reviews")
    rng = np.random.default_rng(0)
    text = TextFeatures(user=np.zeros((world.n_users, 64), np.float32),
                        item=rng.normal(size=(world.n_items, 64)).astype(np.float32))
    return make_split(world, "topk-random", seed=0), text


def test_auto_keeps_the_useful_source_and_drops_the_noise(noisy_world, tmp_path):
    split, text = noisy_world
    model = FusionRecommender(**FAST, sources="auto", runner=RUNNER)
    model.set_text_features(text).fit(split)
    selection = model.selection_
    assert model.used_sources() == selection.chosen == ("interactions", "social")
    by_set = {c.sources: c.valid for c in selection.candidates}
    assert by_set[("interactions", "social")] > by_set[("interactions",)]
    assert by_set[("interactions", "item_text")] < by_set[("interactions",)]
    assert by_set[("interactions", "item_text", "social")] < by_set[("interactions", "social")]
    assert selection.trainings == 5  # base, two additions, one more round, the final training
    # the final training (same seed) reproduces the winning candidate
    assert evaluate(model, split, "valid")["ndcg@10"] == pytest.approx(
        by_set[selection.chosen], abs=1e-9)
    details = model.fit_details()["source_selection"]
    assert details["chosen"] == ["interactions", "social"] and details["trainings"] == 5
    loaded = FusionRecommender.load(model.save(tmp_path / "run"))
    assert loaded.fit_details() == model.fit_details()


def test_auto_without_a_runner_says_how_to_get_one(noisy_world):
    split, text = noisy_world
    model = FusionRecommender(**FAST, sources="auto")
    with pytest.raises(ModelError, match="make_model"):
        model.set_text_features(text).build(split, model.trainer)


def test_train_prints_and_records_the_choice_and_its_cost(tmp_path, capsys):
    import json
    from pathlib import Path

    from fusionrec.cli.main import main

    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "run"
    assert main(["train", "-c", str(repo / "configs" / "quickstart.yaml"), "--out", str(out),
                 "--set", "model.params.sources=auto", "--set", "encoder.model=hashing:16",
                 "--set", "data.exclude_sources=[user_attributes, item_attributes, item_text, "
                 "kg, reviews]", "--set", "trainer.epochs=2",
                 "--set", "model.params.embedding_dim=8", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    selection = json.loads((out / "manifest.json").read_text())["fit"]["source_selection"]
    assert [c["sources"] for c in selection["candidates"]] == [
        ["interactions"], ["interactions", "social"]]
    assert selection["trainings"] == 3 and selection["monitor"] == "ndcg@10"
    assert "after 3 trainings" in printed and str(selection["chosen"]) in printed
    model = json.loads((out / "model.json").read_text())
    assert model["state"]["sources"] == selection["chosen"]
