"""Low-precision recipes for the text encoder: speed and agreement with fp32, one model, 1 thread.

Variants (all on the same fp32 MiniLM, forward pass + mean pooling, texts pre-tokenised):
``fp32``; ``autocast`` (bf16 matmul weights under ``torch.autocast``, the path before the
mixed twin); ``pure-bf16`` (``model.to(bfloat16)``); ``twin`` (:mod:`fusionrec.encoders.mixed`:
bf16 matmuls with fused bias/GELU, fp32 norms and residual stream, under autocast, the default);
``twin-unfused`` (the same without the oneDNN fusion); ``twin-no-autocast``.

Timing is interleaved per batch (every variant runs each batch in a rotating order, so all see
the same background load); a case's time is the sum over batches of the per-batch median over
repeats. Agreement: min and mean cosine of the pooled vectors to fp32 over every text.

    python benchmarks/encode_precision.py [--repeats 7] [--n-real 384] [--json OUT]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def variants(base) -> dict:
    """name -> (model, run under bf16 autocast?)."""
    import torch

    from fusionrec.encoders.mixed import mixed_precision_copy
    from fusionrec.encoders.precision import low_precision_copy

    return {"fp32": (base, False),
            "autocast": (low_precision_copy(base, "bf16"), True),
            "pure-bf16": (copy.deepcopy(base).to(torch.bfloat16), False),
            "twin": (mixed_precision_copy(base), True),
            "twin-unfused": (mixed_precision_copy(base, fuse=False), True),
            "twin-no-autocast": (mixed_precision_copy(base), False)}


def batches(ids: list[list[int]], size: int) -> list:
    """Length-sorted, right-padded batches: ``[(rows, input_ids, mask)]``."""
    import torch

    order = np.argsort([-len(r) for r in ids], kind="stable")
    out = []
    for start in range(0, len(ids), size):
        rows = order[start:start + size]
        width = max(len(ids[i]) for i in rows)
        x = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros_like(x)
        for r, i in enumerate(rows):
            x[r, :len(ids[i])] = torch.tensor(ids[i])
            mask[r, :len(ids[i])] = 1
        out.append((rows, x, mask))
    return out


def pooled(model, autocast: bool, x, mask) -> np.ndarray:
    import torch

    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        hidden = model(input_ids=x, attention_mask=mask).last_hidden_state.float()
        weights = mask.unsqueeze(-1).float()
        return ((hidden * weights).sum(1) / weights.sum(1)).numpy()


def run_case(models: dict, ids: list[list[int]], batch: int, repeats: int) -> dict:
    names = list(models)
    parts = batches(ids, batch)
    outs = {k: np.zeros((len(ids), 0), np.float32) for k in names}
    for name in names:  # warm-up (oneDNN kernels) and the vectors compared
        outs[name] = np.concatenate([pooled(*models[name], x, m) for _, x, m in parts])
    times = {k: [[] for _ in parts] for k in names}
    for rep in range(repeats):
        for b, (_, x, mask) in enumerate(parts):
            for j in range(len(names)):
                name = names[(j + rep + b) % len(names)]
                start = time.perf_counter()
                pooled(*models[name], x, mask)
                times[name][b].append(time.perf_counter() - start)
    total = {k: sum(statistics.median(t) for t in times[k]) for k in names}
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    rows = {}
    for name in names:
        cosine = np.sum(unit(outs[name]) * unit(outs["fp32"]), axis=1)
        rows[name] = {"texts_per_s": round(len(ids) / total[name], 1),
                      "speed_vs_fp32": round(total["fp32"] / total[name], 2),
                      "speed_vs_autocast": round(total["autocast"] / total[name], 2),
                      "min_cosine": round(float(cosine.min()), 6),
                      "mean_cosine": round(float(cosine.mean()), 7)}
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--n-real", type=int, default=384, help="Last.FM item texts")
    parser.add_argument("--data-dir", help="data root holding lastfm-hetrec2011/")
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModel, AutoTokenizer

    from encode import cpu_model, lastfm_texts, synthetic_texts
    from fusionrec.encoders.resolve import resolve_model

    torch.set_num_threads(1)
    path = str(resolve_model("all-MiniLM-L6-v2").path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    base = AutoModel.from_pretrained(path, dtype=torch.float32).eval().requires_grad_(False)
    models = variants(base)
    cases = {"synthetic-128": (synthetic_texts(tokenizer, 128, 128), 32)}
    real = lastfm_texts(args.data_dir, args.n_real)
    if real:
        cases["lastfm-items"] = (real, 64)
    print(f"CPU: {cpu_model()}; 1 thread; load before {os.getloadavg()}")
    results = {}
    for case, (texts, batch) in cases.items():
        ids = tokenizer(texts, truncation=True, max_length=128)["input_ids"]
        rows = run_case(models, ids, batch, args.repeats)
        load = os.getloadavg()[0]
        print(f"== {case}: {len(ids)} texts, {np.mean([len(r) for r in ids]):.0f} tokens on "
              f"average, batch {batch}, load {load:.2f}")
        for name, r in rows.items():
            print(f"  {name:<18}{r['texts_per_s']:8.1f} texts/s  x{r['speed_vs_fp32']:<5} fp32"
                  f"  x{r['speed_vs_autocast']:<5} autocast  min cos {r['min_cosine']:.6f}"
                  f"  mean {r['mean_cosine']:.7f}", flush=True)
        results[case] = {"n_texts": len(ids), "batch": batch, "loadavg_1m": round(load, 2),
                         "variants": rows}
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"cpu": cpu_model(), "threads": 1, "repeats": args.repeats,
                                   "cases": results}, indent=1) + "\n")
        print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
