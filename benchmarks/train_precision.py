"""Training-step time of ``trainer.precision`` fp32 against bf16 (autocast) for one run config.

    python benchmarks/train_precision.py                                  # Last.FM top-K config
    python benchmarks/train_precision.py -c configs/ml100k-topk.yaml --steps 20 --json out.json

The model is built once per precision from the same seed, so both time the same weights on the
same batches. Steps alternate between the two models (fp32, bf16, fp32, ...) so that a shared
machine's load hits both alike; the table gives the median wall and CPU seconds per step after
``--warmup`` untimed steps each, and the loss of the first step from the common start (the
precisions' agreement on one forward pass). Whether bf16 *trains* as well is a question for
whole runs (valid and test metrics), not for this script.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fusion_lastfm import data_dir  # noqa: E402

from fusionrec.precision import TRAINING_PRECISIONS  # noqa: E402



def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", default="configs/lastfm-topk.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. model.params.cross_source=true")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per precision")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None)
    return parser.parse_args(argv)


class _Stepper:
    """One model and optimiser at one precision, stepping through a fixed list of batches."""

    def __init__(self, config, split, precision: str) -> None:
        import dataclasses

        import torch

        from fusionrec.training.optim import make_optimizer
        from fusionrec.training.run import build_model

        self.trainer = dataclasses.replace(config.trainer, precision=precision)
        self.model = build_model(config)
        torch.manual_seed(self.trainer.seed)
        self.module = self.model.build(split, self.trainer)
        groups = (self.model.param_groups(self.module) if hasattr(self.model, "param_groups")
                  else self.module.parameters())
        self.optimizer = make_optimizer(self.trainer, groups)
        self.module.train()
        self.walls: list[float] = []
        self.cpus: list[float] = []
        self.losses: list[float] = []

    def step(self, batch, timed: bool) -> None:
        from fusionrec.training.precision import training_autocast

        wall, cpu = time.perf_counter(), time.process_time()
        self.optimizer.zero_grad(set_to_none=True)
        with training_autocast(self.trainer.precision):
            loss = self.model.loss(self.module, batch)
        loss.backward()
        self.optimizer.step()
        if timed:
            self.walls.append(time.perf_counter() - wall)
            self.cpus.append(time.process_time() - cpu)
        self.losses.append(loss.item())


def main(argv=None) -> int:
    args = parse_args(argv)
    import numpy as np
    import torch

    from fusionrec.config import load_config
    from fusionrec.training.run import load_data, make_split

    torch.set_num_threads(args.threads)
    config = load_config(args.config, args.set)
    data = load_data(config.data, data_dir(args.data_dir))
    split = make_split(data.dataset, config.protocol)
    steppers = {p: _Stepper(config, split, p) for p in TRAINING_PRECISIONS}
    first = steppers["fp32"]
    n_steps = args.warmup + args.steps
    batches = list(first.model.training_batches(split, config.trainer.batch_size,
                                                np.random.default_rng(0)))
    batches = (batches * (n_steps // len(batches) + 1))[:n_steps]
    load = os.getloadavg()
    for index, batch in enumerate(batches):
        for stepper in steppers.values():
            stepper.step(batch, timed=index >= args.warmup)
    rows = []
    for precision, stepper in steppers.items():
        rows.append({"precision": precision,
                     "step_s": round(statistics.median(stepper.walls), 4),
                     "step_cpu_s": round(statistics.median(stepper.cpus), 4),
                     "first_loss": stepper.losses[0], "last_loss": stepper.losses[-1]})
    speedup = rows[0]["step_s"] / rows[1]["step_s"]
    loss_gap = abs(rows[1]["first_loss"] - rows[0]["first_loss"]) / abs(rows[0]["first_loss"])
    print(f"{args.config} {' '.join(args.set)}: {len(split.train)} training rows, batch "
          f"{config.trainer.batch_size}, {args.threads} thread(s), {args.steps} timed steps "
          f"(+{args.warmup} warm-up) each, interleaved")
    print(f"load average before: {load[0]:.2f} {load[1]:.2f}; after: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg()[:2])}")
    print(f"{'precision':<10}{'step s':>9}{'step CPU s':>12}{'first loss':>12}{'last loss':>11}")
    for r in rows:
        print(f"{r['precision']:<10}{r['step_s']:>9}{r['step_cpu_s']:>12}"
              f"{r['first_loss']:>12.5f}{r['last_loss']:>11.5f}")
    print(f"bf16 speed-up {speedup:.2f}x (median wall); first-step loss gap {loss_gap:.2e}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({
            "config": args.config, "set": args.set, "threads": args.threads,
            "steps": args.steps, "warmup": args.warmup, "load": load,
            "cpu": _cpu_name(), "rows": rows, "speedup": round(speedup, 3),
            "first_loss_relative_gap": loss_gap}, indent=2) + "\n")
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
