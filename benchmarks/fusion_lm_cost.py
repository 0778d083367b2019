"""CPU cost of one training epoch of the fusion model per LM training mode (``lm_mode``).

    nice -n 10 python benchmarks/fusion_lm_cost.py                       # every mode, full epoch
    nice -n 10 python benchmarks/fusion_lm_cost.py --fraction 0.1        # 10% of the steps, scaled
    nice -n 10 python benchmarks/fusion_lm_cost.py --modes frozen lora --json results/lm_cost.json

Last.FM (preset ``lastfm-kg``, protocol ``ctr-kgcn``, seed 0), all sources, the CTR settings of
``fusion_lastfm.py`` (batch 2048) and the bundled MiniLM. Per mode it reports

- ``build_s``: loading the LM, applying the mode and tokenising every item/user text (once);
- ``steps_s``: the training steps of one epoch (with ``--fraction f``: an epoch over a random
  ``f`` of the training rows, timed and divided by ``f`` -- an extrapolation, said so);
- ``refresh_s``: re-encoding every text through the trained LM (once per epoch; with
  ``--refresh-fraction g``: a random ``g`` of the texts, timed and divided by ``g``);
- ``epoch_s`` = ``steps_s + refresh_s`` (validation scoring costs the same in every mode), and
  ``epoch_cpu_s``, the same in CPU seconds of this process: steadier than wall time on a
  shared machine (on an idle one, wall ~ CPU / threads).

Text features come from the embedding cache (encoded once beforehand, not timed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fusion_lastfm import TASKS, data_dir  # noqa: E402

MODES = ("frozen", "top_k", "lora", "prefix", "full")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--fraction", type=float, default=1.0,
                        help="share of one epoch's training rows to time (scaled up to 1)")
    parser.add_argument("--refresh-fraction", type=float, default=1.0,
                        help="share of the texts to re-encode when timing the refresh (scaled)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a fusion param (YAML value), e.g. lm_batch_texts=128")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None)
    return parser.parse_args(argv)


def _now() -> tuple[float, float]:
    """(wall, this process's CPU) seconds: on a shared machine the CPU time is the steadier
    figure; on an idle one, wall ~ CPU / threads."""
    return time.perf_counter(), time.process_time()


def _since(mark: tuple[float, float], scale: float = 1.0) -> tuple[float, float]:
    wall, cpu = _now()
    return round((wall - mark[0]) / scale, 1), round((cpu - mark[1]) / scale, 1)


def measure(split, params: dict, text, mode: str, fraction: float,
            refresh_fraction: float) -> dict:
    import numpy as np

    from fusionrec.config import TrainerConfig
    from fusionrec.models.fusion.recommender import FusionRecommender
    from fusionrec.evaluation.evaluate import evaluate
    from fusionrec.training.trainer import Trainer

    trainer = TrainerConfig(**{**params["trainer"], "epochs": 1, "patience": 0, "seed": 0})
    model = FusionRecommender(**{**params, "lm_mode": mode, "trainer": trainer})
    model.set_text_features(text)
    rows = np.random.default_rng(0).permutation(len(split.train))
    part = dataclasses.replace(split, train=split.train.take(
        np.sort(rows[:max(1, round(fraction * len(rows)))])), valid=split.valid.take(rows[:0]))
    marks = {"start": _now()}
    build = model.build

    def timed_build(*args):  # the Trainer builds the model; note when that is done
        module = build(*args)
        marks["build"], marks["built"] = _since(marks["start"]), _now()
        return module

    model.build = timed_build
    fitter = Trainer(trainer, evaluate=evaluate, progress=False,
                     callbacks=[lambda epoch, record: marks.setdefault(
                         "steps", _since(marks["built"], fraction))])
    fitter.fit(model, part)
    lm = model.text_lm_
    refresh = (0.0, 0.0)
    if lm is not None:  # what refresh() runs, on a share of the texts, scaled up
        live = model.module_.encoders["item_text"].live
        texts = live.item_ids + (live.user_ids or [])
        pick = np.random.default_rng(1).permutation(len(texts))
        pick = pick[:max(1, round(refresh_fraction * len(texts)))]
        started = _now()
        lm.encode([texts[i] for i in pick])
        refresh = _since(started, len(pick) / len(texts))
    steps = marks["steps"]
    return {"mode": mode, "fraction": fraction, "refresh_fraction": refresh_fraction,
            "steps": fitter.summary_.step, "build_s": marks["build"][0],
            "steps_s": steps[0], "steps_cpu_s": steps[1],
            "refresh_s": refresh[0], "refresh_cpu_s": refresh[1],
            "epoch_s": round(steps[0] + refresh[0], 1),
            "epoch_cpu_s": round(steps[1] + refresh[1], 1),
            "trainable_lm_params": (sum(p.numel() for p in lm.parameters() if p.requires_grad)
                                    if lm is not None else 0),
            "train_loss": fitter.summary_.history[-1]["train_loss"]}


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    import yaml

    torch.set_num_threads(args.threads)
    from fusionrec.data.load import load_dataset
    from fusionrec.data.protocols import make_split
    from fusionrec.models.fusion.build import load_text_features

    spec = TASKS["ctr"]
    params = json.loads(json.dumps(spec["params"]))
    params["encoder"] = {"model": "all-MiniLM-L6-v2", "num_threads": args.threads}
    for item in args.set:
        key, _, value = item.partition("=")
        params[key] = yaml.safe_load(value)
    dataset, _ = load_dataset(spec["preset"], data_dir(args.data_dir))
    split = make_split(dataset, spec["protocol"], seed=0)
    text = load_text_features(split.features, params["encoder"])
    load = os.getloadavg()
    rows = []
    for mode in args.modes:
        row = measure(split, params, text, mode, args.fraction, args.refresh_fraction)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\nload average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; threads {args.threads}; "
          f"{len(split.train)} training rows, batch {params['trainer']['batch_size']}")
    if args.fraction < 1 or args.refresh_fraction < 1:
        print(f"steps timed on {args.fraction:.0%} of the rows and refresh on "
              f"{args.refresh_fraction:.0%} of the texts, both scaled to a full epoch")
    print(f"{'mode':<8}{'LM params':>11}{'build s':>9}{'steps s':>9}{'refresh s':>11}"
          f"{'epoch s':>9}{'epoch CPU s':>13}")
    for r in rows:
        print(f"{r['mode']:<8}{r['trainable_lm_params']:>11,}{r['build_s']:>9}{r['steps_s']:>9}"
              f"{r['refresh_s']:>11}{r['epoch_s']:>9}{r['epoch_cpu_s']:>13}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"load": load, "threads": args.threads,
                                               "params": params, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
