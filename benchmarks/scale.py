"""How FusionRec's costs grow with interactions and with items (issue 6, "Scale").

    nice -n 10 python benchmarks/scale.py --quick      # 5 grid points, a few minutes
    nice -n 10 python benchmarks/scale.py              # 10^4..10^6 interactions x 10^3..10^5 items

Each grid point is a synthetic world (``fusionrec.data.synthetic.generate``, the generator
behind ``fusionrec data generate --users U --items I --interactions N``) measured in its own
subprocess, so its peak resident memory is its own. Per point:

- ``generate_s``, ``split_s``: building the world and its topk-random split;
- ``textualise_s``: rendering one text per user and per item from the split's features;
- ``hashing_encode_s``: encoding *every* text with the hashing encoder (measured);
- ``lm_encode_s``: the bundled all-MiniLM-L6-v2 timed on a random sample of the point's texts
  and **extrapolated** to all of them (``lm_s_per_text`` x ``n_texts``);
- ``train_epoch_s``: the fusion model (every source, hashing text features, embedding 32,
  batch 4096) timed over a few steps after one warm-up step and **extrapolated** to the
  ``ceil(train positives / batch)`` steps of one epoch (validation not included);
- ``peak_rss_mb`` after the data and texts, and after the training steps (before the LM loads),
  plus ``base_rss_mb`` right after imports (numpy, torch, the fusion model).

Users are held fixed across the grid, so the number of texts (users + items) changes only with
the number of items: the claim under test is that LM cost follows texts, not interactions,
while training cost follows interactions. Writes JSON and a PNG (``--json``, ``--plot``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from encode import cpu_model  # noqa: E402  (the CPU line every benchmark JSON carries)


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Clock:
    """Wall and CPU seconds of a block (CPU is steadier on a shared machine)."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def _train_steps(split, features, steps: int, threads: int) -> dict:
    import numpy as np
    import torch

    from fusionrec.config import TrainerConfig
    from fusionrec.models.fusion.recommender import FusionRecommender
    from fusionrec.training.optim import make_optimizer

    torch.set_num_threads(threads)
    cfg = TrainerConfig(lr=0.005, batch_size=4096, epochs=1, num_threads=threads)
    model = FusionRecommender(trainer=cfg, embedding_dim=32, sources="all", layers=2,
                              social_layers=1, hidden=[64], hide_batch_edges=False)
    model.set_text_features(features)
    torch.manual_seed(0)
    with _Clock() as build:
        module = model.build(split, cfg)
    optimizer = make_optimizer(cfg, model.param_groups(module))
    module.train()
    timed, rng, done = [], np.random.default_rng(0), 0
    while len(timed) < steps:  # a tiny world's epoch may have fewer steps: start another
        for batch in model.training_batches(split, cfg.batch_size, rng):
            with _Clock() as clock:
                optimizer.zero_grad(set_to_none=True)
                model.loss(module, batch).backward()
                optimizer.step()
            if done > 0:  # step 0 warms allocators and kernels
                timed.append((clock.wall, clock.cpu))
            done += 1
            if len(timed) == steps:
                break
    n_steps = math.ceil(len(split.train.positives()) / cfg.batch_size)
    wall = float(np.mean([t[0] for t in timed]))
    cpu = float(np.mean([t[1] for t in timed]))
    return {"build_s": round(build.wall, 3), "steps_timed": len(timed),
            "steps_per_epoch": n_steps, "step_s": round(wall, 4),
            "train_epoch_s": round(wall * n_steps, 2), "train_epoch_cpu_s": round(cpu * n_steps, 2),
            "train_params": int(sum(p.numel() for p in module.parameters()))}


def measure_point(users: int, items: int, interactions: int, lm_sample: int, steps: int,
                  threads: int, lm_model: str = "all-MiniLM-L6-v2") -> dict:
    """Every figure of one grid point (run in a fresh process); ``lm_model``: the encoder
    timed on the sample (tests pass a hashing encoder)."""
    import numpy as np
    import torch  # noqa: F401  (imported before the baseline so it counts as "imports")

    from fusionrec.data.protocols import make_split
    from fusionrec.data.synthetic import generate
    from fusionrec.encoders.config import EncoderConfig
    from fusionrec.encoders.factory import build_encoder
    from fusionrec.encoders.features import TextFeatures
    from fusionrec.text.items import item_texts
    from fusionrec.models.fusion.recommender import FusionRecommender  # noqa: F401
    from fusionrec.text.users import user_texts

    out = {"users": users, "items": items, "interactions": interactions,
           "base_rss_mb": round(_rss_mb(), 1)}
    with _Clock() as clock:
        dataset = generate(n_users=users, n_items=items, n_interactions=interactions, seed=0)
    out["generate_s"] = round(clock.wall, 3)
    with _Clock() as clock:
        split = make_split(dataset, "topk-random", 0)
    out["split_s"] = round(clock.wall, 3)
    with _Clock() as clock:
        texts_i = item_texts(split.features)
        texts_u = user_texts(split.features)
    texts = list(texts_u) + list(texts_i)
    out.update(textualise_s=round(clock.wall, 3), n_texts=len(texts),
               mean_text_chars=round(float(np.mean([len(t) for t in texts])), 1))
    hashing = build_encoder(EncoderConfig(model="hashing:64"))
    with _Clock() as clock:
        vectors = hashing.encode(texts)
    out.update(hashing_encode_s=round(clock.wall, 3),
               hashing_s_per_text=clock.wall / len(texts),
               peak_rss_data_mb=round(_peak_mb(), 1))
    features = TextFeatures(user=vectors[:len(texts_u)], item=vectors[len(texts_u):])
    out.update(_train_steps(split, features, steps, threads))
    out["peak_rss_train_mb"] = round(_peak_mb(), 1)

    rng = np.random.default_rng(0)
    sample = [texts[i] for i in rng.choice(len(texts), size=min(lm_sample, len(texts)),
                                           replace=False)]
    lm = build_encoder(EncoderConfig(model=lm_model, num_threads=threads))
    lm.encode(sample[:8])  # load weights and warm up outside the clock
    with _Clock() as clock:
        lm.encode(sample)
    per_text = clock.wall / len(sample)
    out.update(lm_model=lm_model, lm_sample=len(sample), lm_s_per_text=per_text,
               lm_cpu_s_per_text=clock.cpu / len(sample),
               lm_encode_s=round(per_text * len(texts), 2), lm_extrapolated=True)
    return out


def grid(quick: bool) -> list[dict]:
    """Interactions at the smallest item count, items at 10^5 interactions (quick), or the
    full cross product."""
    if quick:
        users = 4_000
        points = [(1_000, n) for n in (10_000, 100_000, 1_000_000)]
        points += [(i, 100_000) for i in (10_000, 100_000)]
        return [{"users": users, "items": i, "interactions": n, "lm_sample": 192, "steps": 5}
                for i, n in points]
    users = 10_000
    return [{"users": users, "items": i, "interactions": n, "lm_sample": 256, "steps": 12}
            for i in (1_000, 10_000, 100_000) for n in (10_000, 100_000, 1_000_000)]


def plot(rows: list[dict], path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14, 4.2))
    texts_ax, inter_ax, mem_ax = fig.subplots(1, 3)
    by_texts = sorted(rows, key=lambda r: r["n_texts"])
    for key, label, marker in (("lm_encode_s", "MiniLM encode (extrapolated)", "o"),
                               ("hashing_encode_s", "hashing encode (measured)", "s"),
                               ("textualise_s", "textualise", "^")):
        texts_ax.scatter([r["n_texts"] for r in by_texts], [r[key] for r in by_texts],
                         label=label, marker=marker)
    xs = sorted({r["n_texts"] for r in rows})
    per = sorted(r["lm_s_per_text"] for r in rows)[len(rows) // 2]
    texts_ax.plot(xs, [per * x for x in xs], "k--", linewidth=0.8, label="linear in texts")
    texts_ax.set(xscale="log", yscale="log", xlabel="texts (users + items)", ylabel="seconds",
                 title="encoding grows with the number of texts")
    texts_ax.legend(fontsize="small")

    smallest = min(r["items"] for r in rows)
    fixed = sorted((r for r in rows if r["items"] == smallest), key=lambda r: r["interactions"])
    n = [r["interactions"] for r in fixed]
    inter_ax.plot(n, [r["lm_encode_s"] for r in fixed], "o-", label="MiniLM encode (extrap.)")
    inter_ax.plot(n, [r["hashing_encode_s"] for r in fixed], "s-", label="hashing encode")
    inter_ax.plot(n, [r["train_epoch_s"] for r in fixed], "^-", label="train / epoch (extrap.)")
    inter_ax.set(xscale="log", yscale="log", xlabel="interactions",
                 ylabel="seconds", title=f"at {smallest:,} items, {fixed[0]['users']:,} users")
    inter_ax.legend(fontsize="small")

    mem_ax.plot(n, [r["peak_rss_train_mb"] for r in fixed], "o-",
                label=f"vs interactions ({smallest:,} items)")
    mid = sorted({r["interactions"] for r in rows})
    anchor = 100_000 if 100_000 in mid else mid[len(mid) // 2]
    by_items = sorted((r for r in rows if r["interactions"] == anchor), key=lambda r: r["items"])
    mem_ax.plot([r["items"] for r in by_items], [r["peak_rss_train_mb"] for r in by_items],
                "s-", label=f"vs items ({anchor:,} interactions)")
    mem_ax.axhline(min(r["base_rss_mb"] for r in rows), color="gray", linestyle=":",
                   label="after imports")
    mem_ax.set(xscale="log", xlabel="interactions or items", ylabel="peak RSS (MiB)",
               title="peak memory (data + training, before the LM)")
    mem_ax.legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 grid points (a few minutes)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for training and the LM (default 1: steadier on "
                        "a shared machine)")
    parser.add_argument("--json", default=str(RESULTS / "scale.json"))
    parser.add_argument("--plot", default=str(RESULTS / "scale.png"))
    parser.add_argument("--point", help=argparse.SUPPRESS)  # internal: one point, as JSON
    args = parser.parse_args(argv)
    if args.point:
        print(json.dumps(measure_point(**json.loads(args.point), threads=args.threads)))
        return 0
    rows, started = [], time.perf_counter()
    for point in grid(args.quick):
        done = subprocess.run([sys.executable, __file__, "--point", json.dumps(point),
                               "--threads", str(args.threads)], capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            return 1
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"users {row['users']:>6,} items {row['items']:>7,} interactions "
              f"{row['interactions']:>9,} | texts {row['n_texts']:>7,} | MiniLM "
              f"{row['lm_encode_s']:>7.1f}s (extrap.) hashing {row['hashing_encode_s']:>5.2f}s "
              f"textualise {row['textualise_s']:>5.1f}s | train/epoch "
              f"{row['train_epoch_s']:>7.1f}s (extrap.) | peak {row['peak_rss_train_mb']:>6.0f} MiB", flush=True)
    load = os.getloadavg()
    payload = {"cpu": cpu_model(), "threads": args.threads, "quick": args.quick,
               "load_average": [round(x, 2) for x in load],
               "seconds": round(time.perf_counter() - started, 1), "rows": rows}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    plot(rows, Path(args.plot))
    print(f"wrote {args.json} and {args.plot} in {payload['seconds']:.0f}s "
          f"(load average {load[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
