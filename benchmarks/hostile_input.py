"""Hostile input against ``fusionrec serve``: pathological payloads sent to a real uvicorn
process on 127.0.0.1, while a second thread polls ``/healthz``.

    python benchmarks/hostile_input.py                 # trains a small synthetic run first
    python benchmarks/hostile_input.py --run-dir RUN   # or serves an existing run folder

Each case (bodies of 1 MB and 10 MB, long runs without spaces, long digit runs, deeply nested
JSON, 10,000-item batches, NaN/inf, unicode edge cases, path-like ids) is sent ``--repeat``
times. A case passes when every answer is a 4xx within ``--reject-ms`` (100 ms) and the
``/healthz`` p99 over the case, plus a short tail after it, stays within ``--healthz-ms``
(50 ms). A case that gets no answer in ``--timeout`` seconds, or after which ``/healthz``
stays silent, has stalled the server: it is killed and restarted so the next cases still run.
Prints a table, writes JSON (with the CPU model and load average: the client shares the
machine with the server) and exits 1 when any case fails or the server answered any 5xx.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from encode import cpu_model  # noqa: E402
from hostile_cases import Case, build_cases  # noqa: E402
from hostile_client import HealthPoller, send  # noqa: E402
from serve_load import API_KEY, free_port, percentile, start_server, wait_ready  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TAIL_S = 0.3  # /healthz is watched this long after the last answer: work may outlive it


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", help="serve this run folder (default: train a small "
                        "fusion run on the synthetic preset into a temp folder)")
    parser.add_argument("--repeat", type=int, default=3, help="sends of each case")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for one answer before calling it a stall")
    parser.add_argument("--reject-ms", type=float, default=100.0)
    parser.add_argument("--healthz-ms", type=float, default=50.0)
    parser.add_argument("--only", nargs="+", help="run only these case names")
    parser.add_argument("--json", default="benchmarks/results/hostile_input.json")
    return parser.parse_args(argv)


def train_small_run(out: Path) -> Path:
    """A small fusion run on the embedded synthetic dataset (about 15 s on 2 cores)."""
    from fusionrec.config import RunConfig
    from fusionrec.models.fusion.recommender import FusionRecommender
    from fusionrec.evaluation.runs import train_run

    params = {**FusionRecommender.SMOKE_PARAMS, "embedding_dim": 16,
              "encoder": {"model": "hashing:128"}}
    trainer = {**params.pop("trainer"), "epochs": 4, "seed": 0, "num_threads": 1}
    config = RunConfig.from_dict({
        "data": {"preset": "synthetic"}, "protocol": {"name": "topk-random", "seed": 0},
        "model": {"name": "fusion", "params": params}, "trainer": trainer,
        "evaluation": {"ks": [10], "threshold": 0.5}})
    train_run(config, out, progress=False)
    return out


def judge(statuses: list, reject_ms: list[float], healthz_p99: float, healthz_failed: int,
          limits: tuple[float, float]) -> list[str]:
    """Why a case fails (empty: it passed). ``statuses`` holds ints, or None for no answer."""
    max_reject, max_health = limits
    reasons = []
    bad = sorted({str(s) for s in statuses if s is None or not 400 <= s < 500})
    if bad:
        reasons.append("status " + "/".join(bad))
    if reject_ms and max(reject_ms) > max_reject:
        reasons.append(f"reject {max(reject_ms):.0f} ms > {max_reject:.0f}")
    if healthz_failed:
        reasons.append(f"{healthz_failed} /healthz unanswered")
    if healthz_p99 > max_health:
        reasons.append(f"/healthz p99 {healthz_p99:.1f} ms > {max_health:.0f}")
    return reasons


def run_case(case: Case, port: int, poller: HealthPoller, repeat: int, timeout: float,
             limits: tuple[float, float]) -> dict:
    poller.mark()
    statuses, times, errors, details = [], [], [], []
    for _ in range(repeat):
        reply = send(port, case.method, case.path, case.body, case.headers, timeout)
        statuses.append(reply.status)
        times.append(reply.seconds * 1000)
        errors += [reply.error] if reply.error else []
        details += [reply.detail] if reply.detail and reply.detail not in details else []
        if reply.status is None:
            break  # no answer: the server may be stalled, do not pile on
    time.sleep(TAIL_S)
    latencies, failed = poller.since_mark()
    p99 = percentile(latencies, 99) * 1000 if latencies else float("inf")
    reasons = judge(statuses, times, p99, failed, limits)
    return {"case": case.name, "method": case.method, "path": case.path[:60],
            "body_bytes": len(case.body), "expect": case.expect, "statuses": statuses,
            "reject_ms_max": round(max(times), 1), "reject_ms_min": round(min(times), 1),
            "healthz_p99_ms": round(p99, 2), "healthz_samples": len(latencies),
            "healthz_unanswered": failed, "errors": errors[:3], "answers": details[:2],
            "pass": not reasons,
            "why": "; ".join(reasons)}


def table(rows: list[dict]) -> str:
    head = f"{'case':<26} {'MB':>6} {'status':>11} {'reject ms':>10} {'healthz p99':>11}  verdict"
    lines = [head, "-" * len(head)]
    for r in rows:
        status = "/".join(sorted({str(s) for s in r["statuses"]}))
        lines.append(f"{r['case']:<26} {r['body_bytes'] / 1e6:>6.2f} {status:>11} "
                     f"{r['reject_ms_max']:>10.1f} {r['healthz_p99_ms']:>11.1f}  "
                     + ("PASS" if r["pass"] else "FAIL: " + r["why"]))
    return "\n".join(lines)


def server_exceptions(log_text: str) -> dict[str, int]:
    """How often each exception ended a traceback in the server's log (``Type: message``)."""
    counts: dict[str, int] = {}
    for line in log_text.splitlines():
        match = re.match(r"^([A-Za-z_][\w.]*(?:Error|Exception)): (.{0,100})", line)
        if match:
            key = f"{match.group(1)}: {match.group(2)}"
            counts[key] = counts.get(key, 0) + 1
    return counts


def main(argv=None) -> int:
    args = parse_args(argv)
    limits = (args.reject_ms, args.healthz_ms)
    with tempfile.TemporaryDirectory(prefix="fusionrec-hostile-") as tmp:
        run_dir = Path(args.run_dir).resolve() if args.run_dir else \
            train_small_run(Path(tmp) / "run")
        users = json.loads((run_dir / "users.json").read_text(encoding="utf-8"))
        items = json.loads((run_dir / "items.json").read_text(encoding="utf-8"))
        cases = [c for c in build_cases(API_KEY, users[0], items[0])
                 if not args.only or c.name in args.only]
        database, port = str(Path(tmp) / "events.sqlite3"), free_port()
        log_path = Path(tmp) / "server.log"
        log = log_path.open("wb")  # the server's tracebacks are counted, not printed
        load_before = os.getloadavg()
        server = start_server(str(run_dir), port, database, 1, None, log)
        rows, restarts = [], 0
        try:
            wait_ready(port, server)
            with HealthPoller(port) as poller:
                for case in cases:
                    row = run_case(case, port, poller, args.repeat, args.timeout, limits)
                    rows.append(row)
                    print(table([row]).splitlines()[-1], flush=True)
                    if not poller.alive(timeout=2.0):  # stalled: restart for the next case
                        row["stalled"], restarts = True, restarts + 1
                        server.kill()
                        server.wait(timeout=30)
                        server = start_server(str(run_dir), port, database, 1, None, log)
                        wait_ready(port, server)
                all_latencies = poller.latencies_ms()
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except Exception:  # SIGTERM ignored (a stalled loop): do not leave it behind
                server.kill()
            log.close()
        exceptions = server_exceptions(log_path.read_text(encoding="utf-8", errors="replace"))
    server_errors = sum(1 for r in rows for s in r["statuses"] if s is not None and s >= 500)
    failed = [r["case"] for r in rows if not r["pass"]]
    result = {
        "benchmark": "hostile_input", "limits": {"reject_ms": args.reject_ms,
                                                 "healthz_p99_ms": args.healthz_ms},
        "repeat": args.repeat, "machine": {
            "cpu_model": cpu_model(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "healthz_p99_ms_overall": round(percentile(all_latencies, 99), 2),
        "healthz_max_ms_overall": round(max(all_latencies, default=float("nan")), 2),
        "server_exceptions": exceptions,
        "server_errors": server_errors, "server_restarts": restarts,
        "passed": len(rows) - len(failed), "failed": failed, "cases": rows}
    print()
    print(table(rows))
    print(f"\n{len(rows) - len(failed)}/{len(rows)} cases pass; {server_errors} server errors "
          f"(5xx); {restarts} stalls (server restarted); /healthz p99 over the whole attack "
          f"{result['healthz_p99_ms_overall']:.1f} ms")
    for message, count in exceptions.items():
        print(f"server exception x{count}: {message}")
    print(f"CPU: {result['machine']['cpu_model']}; load average "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 1 if failed or server_errors else 0


if __name__ == "__main__":
    sys.exit(main())
