"""Text-encoding throughput: FusionRec's default and fp32 paths vs sentence-transformers.

Every case encodes the same texts with three backends in the same process, interleaved within
each repeat so that they share the machine's load; the figure to read is the ratio of texts/s
to ``SentenceTransformer.encode`` (fp32 defaults, same local model folder). Cases: synthetic
texts of exactly 32, 64 and 128 tokens at batch 32 and 128, plus real Last.FM item texts.

    python benchmarks/encode.py                 # full run, prints a table
    python benchmarks/encode.py --quick         # a short run
    python benchmarks/encode.py --json OUT.json # also write {"cpu", "rows": [...]}
    python benchmarks/encode.py --seq-lens 64 --batches 32 --no-real   # one case
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = ("music rock band guitar loud quiet jazz song album tour singer drums bass piano "
         "electronic dance night city love summer record label vinyl stage crowd festival "
         "melody harmony rhythm lyrics voice studio producer remix classic modern acoustic "
         "soul blues folk metal punk indie pop chart radio ballad anthem chorus verse").split()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    import platform

    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


# The CPU features that decide which bf16 kernels run (AMX tiles on Intel, AVX-512 BF16 on AMD
# EPYC and Intel): the encode figures differ by processor, so each JSON says which it had.
BF16_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f")


def cpu_flags(cpuinfo: str | None = None) -> dict[str, bool]:
    """Which of :data:`BF16_FLAGS` the first processor in ``/proc/cpuinfo`` lists."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    return {flag: flag in flags for flag in BF16_FLAGS}


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_texts(tokenizer, n: int, seq_len: int, seed: int = 0) -> list[str]:
    """``n`` word salads that tokenise to at least ``seq_len`` tokens (then truncated)."""
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(n):
        words = list(rng.choice(WORDS, size=seq_len))
        while len(tokenizer(" ".join(words))["input_ids"]) < seq_len:
            words += list(rng.choice(WORDS, size=8))
        texts.append(" ".join(words))
    return texts


def lastfm_texts(data_dir: str | None, n: int) -> list[str] | None:
    try:
        from fusionrec.data.load import load_dataset
        from fusionrec.text.items import ItemTextualiser

        dataset, _ = load_dataset("lastfm", data_dir)
    except Exception as error:  # data not present: the synthetic cases still run
        print(f"(skipping Last.FM item texts: {error})")
        return None
    textualiser = ItemTextualiser(dataset)
    pick = np.linspace(0, dataset.n_items - 1, min(n, dataset.n_items)).astype(int)
    return [textualiser.text(int(i)) for i in pick]


class Backends:
    """The three ways of encoding, each ``(texts, seq_len, batch) -> (n, d) array``."""

    def __init__(self, model_path: str, threads: int | None) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:  # sentence-transformers runs on torch's global pool (default: all cores)
            torch.set_num_threads(threads)
        self.threads = threads or 0  # 0: FusionRec's default, auto_threads()
        self.model_path = model_path
        self.st = SentenceTransformer(model_path, device="cpu")
        self.encoders: dict = {}

    def _fusionrec(self, name: str, seq_len: int, batch: int):
        from fusionrec.encoders.config import EncoderConfig
        from fusionrec.encoders.factory import build_encoder

        key = (name, seq_len, batch)
        if key not in self.encoders:
            extra = {"default": {}, "default+compile": {"compile": True},
                     "fp32": {"precision": "fp32", "compile": False}}[name]
            config = EncoderConfig(model=self.model_path, max_length=seq_len, batch_size=batch,
                                   num_threads=self.threads, **extra)
            self.encoders[key] = build_encoder(config)
        return self.encoders[key]

    def encode(self, backend: str, texts: list[str], seq_len: int, batch: int) -> np.ndarray:
        if backend == "sentence-transformers":
            self.st.max_seq_length = seq_len
            return self.st.encode(texts, batch_size=batch, convert_to_numpy=True,
                                  show_progress_bar=False)
        return self._fusionrec(backend, seq_len, batch).encode(texts)

    def st_threads(self) -> int:
        import torch

        return torch.get_num_threads()

    def runtime(self, backend: str, seq_len: int, batch: int) -> dict:
        if backend == "sentence-transformers":
            return {"precision": "fp32"}
        return self._fusionrec(backend, seq_len, batch).runtime


#: "default" is ``EncoderConfig()`` as is (precision auto; compile auto, which stays off for
#: jobs this small); "default+compile" is what a large job gets (compile auto switches on).
BACKENDS = ("default", "default+compile", "fp32", "sentence-transformers")


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.min(np.sum(a * b, axis=1)))


def run_case(backends: Backends, texts: list[str], seq_len: int, batch: int, repeats: int,
             label: str, clock=time.perf_counter) -> list[dict]:
    warm = {}
    for name in BACKENDS:  # warm-up: precision choice, oneDNN kernels, compilation
        start = time.perf_counter()
        backends.encode(name, texts, seq_len, batch)
        warm[name] = time.perf_counter() - start
    times = {name: [] for name in BACKENDS}
    outputs = {}
    loads = [os.getloadavg()[0]]
    for _ in range(repeats):
        for name in BACKENDS:  # interleaved: every backend sees the same background load
            start = clock()
            outputs[name] = backends.encode(name, texts, seq_len, batch)
            times[name].append(clock() - start)
        loads.append(os.getloadavg()[0])
    speed = {name: len(texts) / statistics.median(times[name]) for name in BACKENDS}
    rows = []
    for name in BACKENDS:
        runtime = backends.runtime(name, seq_len, batch)
        rows.append({
            "backend": name, "texts": label, "seq_len": seq_len, "batch": batch,
            "n_texts": len(texts), "texts_per_s": round(speed[name], 1),
            "ratio_vs_sentence_transformers":
                round(speed[name] / speed["sentence-transformers"], 2),
            "cosine_vs_fp32": round(min_cosine(outputs[name], outputs["fp32"]), 6),
            "precision": runtime.get("precision"), "compiled": runtime.get("compiled", False),
            "threads": runtime.get("threads", backends.st_threads()),
            "warmup_s": round(warm[name], 2), "repeats": repeats,
            "loadavg_1m": [round(min(loads), 2), round(max(loads), 2)],
            "rss_mb": round(rss_mb(), 1)})
    return rows


def print_rows(rows: list[dict]) -> None:
    header = (f"{'texts':<13}{'seq':>4}{'batch':>6}  {'backend':<22}{'texts/s':>9}"
              f"{'vs ST':>7}{'cos vs fp32':>13}{'prec':>6}{'thr':>4}{'load':>12}")
    print(header)
    print("-" * len(header))
    for r in rows:
        load = f"{r['loadavg_1m'][0]:.1f}-{r['loadavg_1m'][1]:.1f}"
        print(f"{r['texts']:<13}{r['seq_len']:>4}{r['batch']:>6}  {r['backend']:<22}"
              f"{r['texts_per_s']:>9.1f}{r['ratio_vs_sentence_transformers']:>6.2f}x"
              f"{r['cosine_vs_fp32']:>13.6f}{str(r['precision']):>6}{r['threads']:>4}{load:>12}",
              flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer texts, cases and repeats")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON")
    parser.add_argument("--repeats", type=int, help="timed repeats per case (median reported)")
    parser.add_argument("--data-dir", help="data root holding lastfm-hetrec2011/")
    parser.add_argument("--model", help="model folder (default: the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--threads", type=int,
                        help="CPU threads for every backend (default: each backend's own "
                             "default: torch's all-cores pool for sentence-transformers, "
                             "FusionRec's load-aware auto_threads)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: texts per second of elapsed time (the figure on an idle "
                             "machine); cpu: texts per CPU-second of this process, which other "
                             "processes' load barely moves (use with --threads 1)")
    parser.add_argument("--seq-lens", type=int, nargs="+",
                        help="synthetic text lengths in tokens (default 32 64 128; quick 32 128)")
    parser.add_argument("--batches", type=int, nargs="+",
                        help="batch sizes of the synthetic cases (default 32 128; quick 32)")
    parser.add_argument("--no-real", action="store_true", help="skip the Last.FM texts case")
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer

    from fusionrec.encoders.resolve import resolve_model

    model_path = args.model or str(resolve_model("all-MiniLM-L6-v2").path)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    repeats = args.repeats or (3 if args.quick else 5)
    seq_lens = args.seq_lens or ((32, 128) if args.quick else (32, 64, 128))
    batches = args.batches or ((32,) if args.quick else (32, 128))
    scale = 1 if args.quick else 2  # texts per case: enough batches for a stable median
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    backends = Backends(model_path, args.threads)
    cpu, flags = cpu_model(), cpu_flags()
    print(f"CPU: {cpu}; {' '.join(f for f, on in flags.items() if on) or 'no bf16 flags'}; threads {args.threads or 'default'}; {args.clock} clock; "
          f"load before: {os.getloadavg()}")
    rows: list[dict] = []
    for seq_len in seq_lens:
        texts = synthetic_texts(tokenizer, scale * 128 * 128 // seq_len, seq_len)
        for batch in batches:
            case = run_case(backends, texts, seq_len, batch, repeats, "synthetic", clock)
            print_rows(case)
            rows += case
    real = None if args.no_real else lastfm_texts(args.data_dir, 256 if args.quick else 512)
    if real:
        case = run_case(backends, real, 128, 64, repeats, "lastfm-items", clock)
        print_rows(case)
        rows += case
    print(f"peak RSS {peak_rss_mb():.0f} MB; load after: {os.getloadavg()}")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"cpu": cpu, "cpu_flags": flags, "threads": args.threads, "clock": args.clock,
                                   "peak_rss_mb": round(peak_rss_mb(), 1), "rows": rows},
                                  indent=1) + "\n")
        print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
