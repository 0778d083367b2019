"""DP-SGD for the fusion head (Opacus): epsilon is reported for the chosen delta, more noise
spends less privacy, and the model keeps scoring with the privately trained head."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("opacus")

from fusionrec.privacy.dp import DPConfig, fit_private_head  # noqa: E402
from training_support import RUNNER


@pytest.fixture(scope="module")
def fitted():
    from fusionrec.data.protocols import make_split
    from fusionrec.data.synthetic import generate
    from fusionrec.models.fusion.recommender import FusionRecommender

    split = make_split(generate(n_users=60, n_items=40, n_interactions=700), "ctr-kgcn", 0)
    params = {**FusionRecommender.SMOKE_PARAMS, "fusion": "gated", "heads": ["ctr", "retrieval"],
              "trainer": {"epochs": 2, "batch_size": 256, "lr": 0.01, "num_threads": 1}}
    model = FusionRecommender(**params, runner=RUNNER)
    from fusionrec.evaluation.evaluate import evaluate
    from fusionrec.training.trainer import Trainer

    Trainer(model.trainer, evaluate=evaluate, progress=False).fit(model, split)
    return model, split


def test_epsilon_falls_as_noise_grows_and_the_head_is_replaced(fitted):
    model, split = fitted
    before = {k: v.clone() for k, v in model.module_.scorer.state_dict().items()}
    reports = [fit_private_head(model, split, DPConfig(noise_multiplier=noise, epochs=1,
                                                       batch_size=64, delta=1e-5))
               for noise in (0.7, 2.0)]
    assert reports[0].epsilon > reports[1].epsilon > 0
    assert all(np.isfinite(r.epsilon) and r.delta == 1e-5 for r in reports)
    assert reports[0].steps == round(1 / reports[0].sample_rate)
    assert reports[0].examples == len(split.train) and "not the per-source tables" in \
        reports[0].covers
    after = model.module_.scorer.state_dict()
    assert any(not np.allclose(before[k].numpy(), after[k].numpy()) for k in before)
    scores = model.score(split.test.user, split.test.item)
    assert scores.shape == (len(split.test),) and np.isfinite(scores).all()


def test_topk_head_trains_privately_and_default_delta_scales_with_data():
    from fusionrec.data.protocols import make_split
    from fusionrec.data.synthetic import generate
    from fusionrec.models.fusion.recommender import FusionRecommender
    from fusionrec.evaluation.evaluate import evaluate
    from fusionrec.training.trainer import Trainer

    split = make_split(generate(n_users=40, n_items=30, n_interactions=400), "topk-random", 0)
    model = FusionRecommender(**{**FusionRecommender.SMOKE_PARAMS, "heads": ["ctr", "retrieval"],
                                 "trainer": {"epochs": 1, "num_threads": 1}}, runner=RUNNER)
    Trainer(model.trainer, evaluate=evaluate, progress=False).fit(model, split)
    report = fit_private_head(model, split, DPConfig(epochs=1, batch_size=64))
    n = len(split.train.positives())
    assert report.examples == n and report.delta == pytest.approx(1 / (10 * n))
    ids, _ = model.recommend(np.array([0, 1]), k=5)
    assert ids.shape == (2, 5)


@pytest.mark.parametrize("bad", [{"noise_multiplier": 0}, {"max_grad_norm": -1},
                                 {"delta": 1.5}, {"epochs": 0}])
def test_dp_config_is_validated(bad):
    with pytest.raises(ValueError, match="dp."):
        DPConfig(**bad)


def test_cli_writes_a_private_copy_of_a_run(tmp_path_factory, tmp_path, capsys, monkeypatch):
    import json

    from privacy_support import cache_of, copy_run

    from fusionrec.cli.main import main
    from fusionrec.encoders.config import CACHE_ENV
    from fusionrec.training.artifacts import open_run

    run_dir = copy_run(tmp_path_factory.getbasetemp(), tmp_path / "run")
    monkeypatch.setenv(CACHE_ENV, str(cache_of(run_dir)))
    out = tmp_path / "private"
    assert main(["dp-head", str(run_dir), "--out", str(out), "--epochs", "1", "--noise", "1.5",
                 "--delta", "1e-4"]) == 0
    printed = json.loads(capsys.readouterr().out)
    _, manifest, model = open_run(out)  # checksums rewritten
    assert manifest["privacy"]["dp"]["epsilon"] == printed["dp"]["epsilon"] > 0
    assert manifest["privacy"]["dp"]["delta"] == 1e-4 and "pseudonym_key_id" in manifest["privacy"]
    assert set(printed["test"]) == set(manifest["metrics"]["test"])
    assert manifest["metrics_non_private"] == json.loads(
        (run_dir / "manifest.json").read_text())["metrics"]
    assert main(["dp-head", str(run_dir), "--out", str(out)]) == 2
