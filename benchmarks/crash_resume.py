"""Crash-and-resume check with a real process: SIGKILL ``fusionrec train`` mid-run, rerun the same
command with ``--resume``, and compare its final metrics with an uninterrupted run's.

    python benchmarks/crash_resume.py -c configs/lastfm-kg-ctr.yaml --kill-after 4
    python benchmarks/crash_resume.py -c configs/quickstart-bprmf.yaml --json OUT.json

Prints both runs' test metrics and the largest absolute difference; exit status 1 when they
differ by more than ``--tolerance`` (default 0: training is seeded and resumes bit-identically).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def train_command(config: str, out: Path, data_dir: str | None, resume: bool) -> list[str]:
    command = [sys.executable, "-m", "fusionrec.cli.main", "train", "-c", config, "--out",
               str(out), "--no-progress"]
    if data_dir:
        command += ["--data-dir", data_dir]
    return command + (["--resume"] if resume else [])


def epochs_logged(run_dir: Path) -> int:
    try:
        return len((run_dir / "metrics.jsonl").read_text().splitlines())
    except OSError:
        return 0


def kill_after(command: list[str], run_dir: Path, epochs: int, env: dict) -> int:
    """Start ``command``; SIGKILL it once ``epochs`` epochs are logged. Returns epochs logged."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    while epochs_logged(run_dir) < epochs:
        if process.poll() is not None:
            raise SystemExit(f"training finished before {epochs} epochs; lower --kill-after")
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return epochs_logged(run_dir)


def test_metrics(run_dir: Path) -> dict[str, float]:
    return json.loads((run_dir / "manifest.json").read_text())["metrics"]["test"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("--kill-after", type=int, default=3, help="epochs logged before SIGKILL")
    parser.add_argument("--data-dir", default=os.environ.get("FUSIONREC_DATA"))
    parser.add_argument("--tolerance", type=float, default=0.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory(prefix="fusionrec-crash-") as tmp:
        clean, crashed = Path(tmp) / "clean", Path(tmp) / "crashed"
        started = time.perf_counter()
        subprocess.run(train_command(args.config, clean, args.data_dir, False), env=env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        clean_s = time.perf_counter() - started
        killed_at = kill_after(train_command(args.config, crashed, args.data_dir, False),
                               crashed, args.kill_after, env)
        started = time.perf_counter()
        subprocess.run(train_command(args.config, crashed, args.data_dir, True), env=env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        resume_s = time.perf_counter() - started
        a, b = test_metrics(clean), test_metrics(crashed)
    shared = sorted(k for k in a if isinstance(a[k], (int, float)) and a[k] == a[k])
    diff = max((abs(a[k] - b[k]) for k in shared), default=0.0)
    print(f"{'metric':<14}{'uninterrupted':>16}{'killed+resumed':>16}")
    for key in shared:
        print(f"{key:<14}{a[key]:>16.6f}{b[key]:>16.6f}")
    print(f"killed (SIGKILL) after {killed_at} epochs; resume took {resume_s:.1f}s "
          f"(uninterrupted run {clean_s:.1f}s); max |difference| {diff:.3g}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "config": args.config, "killed_after_epochs": killed_at, "uninterrupted": a,
            "resumed": b, "max_abs_difference": diff, "resume_seconds": round(resume_s, 1),
            "uninterrupted_seconds": round(clean_s, 1), "loadavg": os.getloadavg()},
            indent=1, default=float) + "\n")
    return 0 if diff <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
