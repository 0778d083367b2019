"""PII scrubbing time on hostile texts: runs without spaces, 10k to 1M characters.

    python benchmarks/scrub.py [--json benchmarks/results/scrub.json] [--repeats 3]

Prints seconds per shape and size (median of ``--repeats``) and the growth from 100k to 1M
characters: a linear scrubber grows ~10x there, the old quadratic patterns grew ~100x (32k
characters of "a." took 47 s). Records the CPU and the load average beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from fusionrec.text.scrub import scrub_pii

# The shapes that made the old patterns quadratic, as (name, unit) repeated to a size.
SHAPES = (("letters", "a"), ("digits", "1"), ("dotted", "a."), ("digit-dots", "1."),
          ("dashes", "a-"), ("plus-digits", "+1"), ("at-signs", "a@"), ("at-dots", "@a."),
          ("host-labels", "b" * 62 + "."))
SIZES = (10_000, 100_000, 1_000_000)


def hostile(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def seconds(text: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        scrub_pii(text)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="also write the rows as JSON here")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from encode import cpu_model  # benchmarks/encode.py: the CPU line every benchmark quotes

    rows = []
    print(f"CPU: {cpu_model()}; load before {os.getloadavg()}")
    print(f"{'shape':<12}" + "".join(f"{n:>12,}" for n in SIZES) + f"{'1M / 100k':>12}")
    for name, unit in SHAPES:
        row = {"shape": name, "seconds": {n: seconds(hostile(unit, n), args.repeats)
                                          for n in SIZES}}
        row["growth_100k_to_1m"] = row["seconds"][SIZES[-1]] / max(row["seconds"][SIZES[-2]],
                                                                   1e-9)
        rows.append(row)
        print(f"{name:<12}" + "".join(f"{row['seconds'][n]:>12.4f}" for n in SIZES)
              + f"{row['growth_100k_to_1m']:>11.1f}x")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"cpu": cpu_model(), "load_after": os.getloadavg(),
                                   "repeats": args.repeats, "rows": rows}, indent=1) + "\n")
        print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
