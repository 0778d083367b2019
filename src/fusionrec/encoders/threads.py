"""CPU threads for encoding: how many (every core on an idle machine, fewer on a busy one), and
one batch per thread (:func:`run_on_threads`)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import threading
import time
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")


def _cpu_jiffies() -> tuple[int, int]:
    """(total, idle) jiffies of the whole machine from the first line of /proc/stat."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:9]]
    return sum(values), values[3] + values[4]  # idle + iowait


def busy_cores(interval: float = 0.1) -> float:
    """Cores kept busy by *other* processes, sampled over ``interval`` seconds (our own CPU
    time in that window is subtracted); falls back to the 1-minute load average."""
    try:
        total0, idle0 = _cpu_jiffies()
        own0 = time.process_time()
        time.sleep(interval)
        total1, idle1 = _cpu_jiffies()
        own = (time.process_time() - own0) / interval
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except (OSError, AttributeError):
            return 0.0
    total = max(total1 - total0, 1)
    busy = (total - (idle1 - idle0)) / total * (os.cpu_count() or 1)
    return max(0.0, busy - own)


def auto_threads() -> int:
    """Threads to use: the usable cores that other processes leave idle.

    On an oversubscribed CPU, OpenMP threads that spin at barriers while their peers wait to be
    scheduled collapse throughput: measured on a 2-core machine with ~5 busy processes, MiniLM
    bf16 encoded 12 texts/s with 2 threads and 158 texts/s with 1. Idle machines get every core.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    return max(1, min(cores, int(cores - busy_cores() + 0.5)))


class ThreadChoice:
    """:func:`auto_threads`, re-measured at most every ``ttl`` seconds: an encoder called many
    times on small batches should not pay the 0.1 s load sample on every call."""

    def __init__(self, ttl: float = 30.0) -> None:
        self.ttl = ttl
        self._value = 0
        self._at = float("-inf")

    def __call__(self) -> int:
        now = time.monotonic()
        if now - self._at > self.ttl:
            self._value, self._at = auto_threads(), now
        return self._value


@contextlib.contextmanager
def torch_threads(n: int):
    """Use ``n`` intra-op threads for the duration (0: leave torch's setting), then restore."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_on_threads(tasks: Iterable[T], run: Callable[[T], None], workers: int,
                   threads_each: int = 1) -> None:
    """``run(task)`` for every task, taken in order by ``workers`` OS threads of
    ``threads_each`` torch intra-op threads each (``workers`` <= 1: the calling thread runs
    them all). The first error stops the other workers and is raised here. ``run`` enters any
    thread-local torch state it needs (inference mode, autocast) itself.

    Why one task per core instead of every core on each task: MiniLM's bf16 passes are small
    matmuls and attention over a few dozen rows, which two OpenMP threads split with ~15% gain
    on a 2-core AMX Xeon, while two single-thread workers on separate batches nearly double the
    rate (torch and oneDNN release the GIL). Workers take the next task when they finish one,
    so longest-first tasks balance out.
    """
    if workers <= 1:
        for task in tasks:
            run(task)
        return
    import torch

    pending = iter(tasks)
    lock = threading.Lock()
    failed = threading.Event()

    def worker() -> None:
        torch.set_num_threads(threads_each)  # intra-op threads are per OS thread
        while not failed.is_set():
            with lock:
                task = next(pending, None)
            if task is None:
                return
            try:
                run(task)
            except BaseException:
                failed.set()
                raise

    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="encode") as pool:
        futures = [pool.submit(worker) for _ in range(workers)]
    for future in futures:
        future.result()  # re-raise a worker's error here
