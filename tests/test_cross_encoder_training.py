"""The cross-encoder trains in the shared Trainer: resume, early stopping and run-folder tracking.

Same tiny random-weight BERT and hand-built dataset as ``test_cross_encoder.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from fusionrec.config import TrainerConfig
from fusionrec.models.cross_encoder.recommender import CrossEncoderRecommender
from fusionrec.evaluation.evaluate import evaluate
from fusionrec.training.trainer import Trainer
from test_cross_encoder import _params
from test_cross_encoder import split  # noqa: F401  (fixture)
from test_training import _Crash, _crash_at


def _state(model) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in model.net_.state_dict().items()}


def _untimed(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


def test_interrupted_run_resumed_gives_the_straight_runs_weights(split, tiny_bert,  # noqa: F811
                                                                 tmp_path):
    # no validation: every epoch runs and the last weights stay, so they carry the whole
    # optimiser trajectory (Adam moments, step count, per-epoch shuffles and dropout masks)
    params = _params(tiny_bert, mode="lora", epochs=4, valid_rows=0, lr=2e-2)
    straight = Trainer(TrainerConfig(), evaluate=evaluate, run_dir=tmp_path / "a", progress=False)
    reference = straight.fit(CrossEncoderRecommender(**params), split)

    with pytest.raises(_Crash):
        Trainer(TrainerConfig(), evaluate=evaluate, run_dir=tmp_path / "b", progress=False,
                callbacks=[_crash_at(2)]).fit(CrossEncoderRecommender(**params), split)
    state = json.loads((tmp_path / "b" / "checkpoints" / "last.json").read_text())
    assert state["epochs_run"] == 2
    again = Trainer(TrainerConfig(), evaluate=evaluate,
                    run_dir=tmp_path / "b", resume=True, progress=False)
    resumed = again.fit(CrossEncoderRecommender(**params), split)

    weights, resumed_weights = _state(reference), _state(resumed)
    lora_b = [k for k in weights if "lora_B" in k]
    assert lora_b and any(np.abs(weights[k]).max() > 0 for k in lora_b)  # LoRA B starts at 0
    for key, value in weights.items():
        np.testing.assert_array_equal(value, resumed_weights[key], err_msg=key)
    assert _untimed(again.summary_.history) == _untimed(straight.summary_.history)
    np.testing.assert_array_equal(reference.score_pairs(split.test),
                                  resumed.score_pairs(split.test))


def test_early_stopping_runs_in_the_trainer_and_tracks_valid_auc(split, tiny_bert,  # noqa: F811
                                                                 tmp_path):
    from fusionrec.metrics import auc_score

    epochs, patience = 8, 1
    model = CrossEncoderRecommender(**_params(tiny_bert, mode="lora", epochs=epochs,
                                              valid_rows=-1, patience=patience, lr=3e-2))
    trainer = Trainer(TrainerConfig(), evaluate=evaluate, run_dir=tmp_path, progress=False)
    trainer.fit(model, split)
    summary = trainer.summary_

    # metrics.jsonl: one line per epoch, epoch 0 (the untrained LM) included, each with AUC
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == list(range(len(lines)))
    assert all(0.0 <= r["valid"]["auc"] <= 1.0 for r in lines)
    assert lines[0]["train_loss"] is None and all(r["train_loss"] > 0 for r in lines[1:])
    assert any((tmp_path / "tensorboard").iterdir())
    assert (tmp_path / "checkpoints" / "last.json").is_file()

    # the stopping rule, replayed from the logged AUCs: stop once `patience` epochs in a row
    # fail to beat the best strictly; the best epoch is the first maximum
    aucs = [r["valid"]["auc"] for r in lines]
    best, bad, stop_at = aucs[0], 0, epochs
    for epoch, auc in enumerate(aucs[1:], start=1):
        best, bad = (auc, 0) if auc > best else (best, bad + 1)
        if bad >= patience:
            stop_at = epoch
            break
    assert len(lines) - 1 == stop_at == summary.epochs_run
    assert summary.stopped_early == (stop_at < epochs)
    assert summary.stopped_early  # this seed's LM stops before its 8 epochs
    assert summary.best_epoch == int(np.argmax(aucs))
    assert model.summary_["best_epoch"] == summary.best_epoch
    assert model.net_.lm_active == (summary.best_epoch > 0)
    # the best epoch's weights are back: re-scoring valid gives its AUC
    assert auc_score(split.valid.label, model.score_pairs(split.valid)) == pytest.approx(
        aucs[summary.best_epoch])
