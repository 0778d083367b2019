"""Load test of ``fusionrec serve``: a real uvicorn process, open-loop traffic at fixed rates.

    python benchmarks/serve_load.py RUN_DIR                        # 100 and 300 req/s, 60 s each
    python benchmarks/serve_load.py RUN_DIR --seconds 5            # a quick smoke
    python benchmarks/serve_load.py RUN_DIR --rates 300 --explain  # with explanations

Requests ``GET /v1/users/{u}/recommendations?k=10`` for users drawn uniformly from the run's
users, sent on a fixed schedule (open loop: a slow answer does not slow the sender down),
over 32 keep-alive HTTP/1.1 connections driven by a minimal asyncio client. (httpx's async
pool costs ~20 ms of client CPU per request at 300 req/s with many connections, which on a
2-core machine starves the server it measures; httpx only polls ``/readyz`` here.) Latency is
measured from the scheduled send time, so time a request waited for a free connection counts
too (no coordinated omission); ``lag p99`` shows how far behind schedule the sender ran.
Prints a table and writes JSON (with the machine's load average, as the client shares it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
API_KEY = "load-test-key-0123456789"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a fusion run folder (fusionrec train --out)")
    parser.add_argument("--rates", type=float, nargs="+", default=[100.0, 300.0],
                        help="requests per second, one phase each (default 100 300)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--explain", action="store_true", help="ask for explanations too")
    parser.add_argument("--threads", type=int, default=1, help="server torch/FAISS threads")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default="benchmarks/results/serve_load.json")
    return parser.parse_args(argv)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(run_dir: str, port: int, database: str, threads: int,
                 data_dir: str | None, log=None) -> subprocess.Popen:
    """``fusionrec serve`` on 127.0.0.1:``port``; its output goes to ``log`` (a file) when
    given, else to ours."""
    env = {**os.environ, "FUSIONREC_API_KEY": API_KEY, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "fusionrec.cli.main", "serve", run_dir, "--port", str(port),
               "--database", database, "--threads", str(threads), "--log-level", "warning"]
    if data_dir:
        command += ["--data-dir", data_dir]
    return subprocess.Popen(command, env=env, stdout=log,
                            stderr=subprocess.STDOUT if log is not None else None)


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 300.0) -> float:
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise SystemExit(f"server exited with code {process.returncode} while starting")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1.0).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server not ready after {timeout:.0f}s")


async def _connection(port: int, queue: asyncio.Queue, latencies: list, lags: list,
                      errors: dict) -> None:
    """One keep-alive HTTP/1.1 connection answering queued ``(scheduled, path)`` requests."""
    reader = writer = None
    while True:
        job = await queue.get()
        if job is None:
            break
        scheduled, path = job
        lags.append(time.perf_counter() - scheduled)
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            # Reads need the key (deny-by-default access, issue 19).
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         f"Authorization: Bearer {API_KEY}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if status != 200:
                errors[str(status)] = errors.get(str(status), 0) + 1
            else:
                latencies.append(time.perf_counter() - scheduled)
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def phase(port: int, users: list[str], rate: float, seconds: float, k: int,
                explain: bool, seed: int, connections: int = 32) -> dict:
    """Open-loop traffic: requests are queued on a fixed schedule and served by
    ``connections`` keep-alive connections (a request waiting for a free connection counts
    its wait as latency)."""
    rng = random.Random(seed)
    latencies: list[float] = []
    lags: list[float] = []
    errors: dict[str, int] = {}
    query = f"k={k}" + ("&explain=true" if explain else "")
    queue: asyncio.Queue = asyncio.Queue()
    workers = [asyncio.create_task(_connection(port, queue, latencies, lags, errors))
               for _ in range(connections)]
    n = int(rate * seconds)
    start = time.perf_counter() + 0.05
    for i in range(n):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((scheduled, f"/v1/users/{rng.choice(users)}/recommendations?{query}"))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    wall = time.perf_counter() - start
    return summarise(rate, seconds, n, wall, latencies, lags, errors)


def _event_loop_runner():
    """``asyncio.run`` on uvloop when installed (a lighter client leaves more CPU to the
    server on a small machine)."""
    try:
        import uvloop

        return uvloop.run
    except ImportError:
        return asyncio.run


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summarise(rate, seconds, n, wall, latencies, lags, errors) -> dict:
    ms = lambda v: round(v * 1000, 2)  # noqa: E731
    return {"rate": rate, "seconds": seconds, "requests": n, "ok": len(latencies),
            "achieved_rps": round(n / wall, 1), "errors": sum(errors.values()),
            "error_kinds": errors, "p50_ms": ms(percentile(latencies, 50)),
            "p95_ms": ms(percentile(latencies, 95)), "p99_ms": ms(percentile(latencies, 99)),
            "max_ms": ms(max(latencies) if latencies else float("nan")),
            "lag_p99_ms": ms(percentile(lags, 99))}


def table(rows: list[dict]) -> str:
    head = ["rate/s", "requests", "achieved", "p50 ms", "p95 ms", "p99 ms", "max ms",
            "errors", "lag p99"]
    lines = ["  ".join(f"{h:>9}" for h in head)]
    for r in rows:
        cells = [r["rate"], r["requests"], r["achieved_rps"], r["p50_ms"], r["p95_ms"],
                 r["p99_ms"], r["max_ms"], r["errors"], r["lag_p99_ms"]]
        lines.append("  ".join(f"{c:>9}" for c in cells))
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    run_dir = str(Path(args.run_dir).resolve())
    users = json.loads((Path(run_dir) / "users.json").read_text(encoding="utf-8"))
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="fusionrec-load-") as tmp:
        server = start_server(run_dir, port, str(Path(tmp) / "events.sqlite3"), args.threads,
                              args.data_dir)
        try:
            ready = wait_ready(port, server)
            print(f"server ready in {ready:.1f}s on port {port}; {len(users)} users")
            run = _event_loop_runner()
            run(phase(port, users, 50.0, args.warmup, args.k, args.explain, seed=99))
            rows = []
            for i, rate in enumerate(args.rates):
                rows.append(run(phase(port, users, rate, args.seconds, args.k, args.explain,
                                      seed=i)))
                print(table(rows[-1:]) if i == 0 else table(rows[-1:]).splitlines()[1])
        finally:
            server.terminate()
            server.wait(timeout=30)
    info = json.loads(Path(run_dir, "manifest.json").read_text())
    result = {"benchmark": "serve_load", "run_dir": run_dir, "model": info.get("model"),
              "data": info.get("data", {}).get("name"), "k": args.k, "explain": args.explain,
              "server_threads": args.threads, "startup_seconds": round(ready, 2),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "loadavg_after": os.getloadavg()},
              "rows": rows}
    print()
    print(table(rows))
    print(f"load average after: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
