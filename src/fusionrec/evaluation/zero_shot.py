"""Before vs after fine-tuning: a trained run beside the untrained LM on the same split.

``fusionrec evaluate RUN_DIR --zero-shot`` scores the run's model and ``lm-zero-shot`` (cosine
between user and item text embeddings of the run's leak-free features, nothing trained) on the
same part of the run's own split, so the gain that training brings is one subtraction.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping


def run_encoder(config) -> Any:
    """The encoder a run used: its ``encoder`` section, else ``model.params.encoder``, else the
    default (bundled MiniLM)."""
    from fusionrec.encoders.config import EncoderConfig

    if config.encoder is not None:
        return config.encoder
    nested = config.model.params.get("encoder")
    if isinstance(nested, Mapping):
        return EncoderConfig.from_dict(nested)
    return EncoderConfig()


def gains(tuned: Mapping[str, float], zero: Mapping[str, float]) -> dict[str, float]:
    """``tuned - zero`` for every metric both hold (counts such as ``n_*`` left out)."""
    return {k: float(tuned[k]) - float(zero[k]) for k in tuned
            if k in zero and not k.startswith("n_") and k != "n"
            and isinstance(tuned[k], (int, float)) and isinstance(zero[k], (int, float))}


def zero_shot_run(run_dir: str | Path, *, part: str = "test", data_dir: str | None = None,
                  encoder=None, progress: bool = False) -> dict[str, Any]:
    """``{"protocol", "part", "metrics", "zero_shot", "gain", "encoder", "wall_seconds"}``:
    ``metrics`` of the trained run, ``zero_shot`` of the untrained LM (``encoder``: an
    ``EncoderConfig`` or mapping; default the run's), ``gain`` their difference."""
    from fusionrec.encoders.config import EncoderConfig
    from fusionrec.encoders.features import text_features
    from fusionrec.evaluation.evaluate import evaluate
    from fusionrec.models.baselines.lm_zero_shot import LMZeroShot
    from fusionrec.training import artifacts
    from fusionrec.training.run import evaluation_kwargs, load_run_split

    started = time.perf_counter()
    config, manifest, model = artifacts.open_run(run_dir)
    _, split = load_run_split(run_dir, config, manifest, data_dir)
    if isinstance(encoder, Mapping):
        encoder = EncoderConfig.from_dict(encoder)
    encoder = encoder or run_encoder(config)
    kwargs = evaluation_kwargs(config)
    tuned = evaluate(model, split, part, **kwargs)
    zero_model = LMZeroShot(encoder=encoder).set_text_features(
        text_features(split.features, encoder, progress=progress)).fit(split)
    zero = evaluate(zero_model, split, part, **kwargs)
    return {"protocol": split.protocol, "part": part, "metrics": tuned, "zero_shot": zero,
            "gain": gains(tuned, zero), "encoder": encoder.model,
            "wall_seconds": round(time.perf_counter() - started, 3)}
