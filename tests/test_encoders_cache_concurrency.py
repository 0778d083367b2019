"""The embedding cache shared by several processes at once (parallel benchmark seeds).

Writers must merge their shards into the index rather than clobber each other's entries, and a
compaction or rebuild in one process must never delete a shard another process's index names.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import traceback
import warnings

import numpy as np

from fusionrec.encoders.cache import EmbeddingCache, text_hash
from fusionrec.encoders.features import encode_cached
from fusionrec.encoders.hashing import HashingEncoder

WORKERS, ROUNDS, DIM = 5, 6, 16
SHARED = [f"shared catalogue item {k} with some words" for k in range(60)]


def _texts(worker: int, round_: int) -> list[str]:
    """Texts overlapping with other workers' (a sliding window of SHARED) plus distinct ones."""
    start = (7 * worker + 11 * round_) % len(SHARED)
    overlap = [SHARED[(start + k) % len(SHARED)] for k in range(20)]
    return overlap + [f"worker {worker} round {round_} text {k}" for k in range(8)]


def _worker(root: str, worker: int, barrier, results) -> None:
    """Encode through the shared cache for ROUNDS rounds; report any error or rebuild."""
    try:
        encoder = HashingEncoder(DIM)
        barrier.wait(timeout=60)  # every process starts writing at the same moment
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for round_ in range(ROUNDS):
                texts = _texts(worker, round_)
                vectors, stats = encode_cached(texts, encoder, root, "v1")
                np.testing.assert_allclose(vectors, encoder.encode(texts), rtol=1e-6)
                if stats["rebuilt"]:
                    raise AssertionError(f"round {round_}: cache rebuilt: {stats['rebuilt']}")
        problems = [str(w.message) for w in caught if "cache" in str(w.message)]
        results.put((worker, "; ".join(problems) or None))
    except BaseException:  # noqa: BLE001 - the parent reports it
        results.put((worker, traceback.format_exc()))


def test_parallel_writers_share_one_cache(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), w, barrier, results))
             for w in range(WORKERS)]
    for proc in procs:
        proc.start()
    outcomes = dict(results.get(timeout=120) for _ in procs)
    for proc in procs:
        proc.join(timeout=30)
    failures = {w: problem for w, problem in outcomes.items() if problem}
    assert not failures, "\n".join(f"worker {w}:\n{p}" for w, p in failures.items())
    assert all(proc.exitcode == 0 for proc in procs)

    # Nothing written by any process was lost, and every cached row is the right vector.
    every = sorted({t for w in range(WORKERS) for r in range(ROUNDS) for t in _texts(w, r)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache = EmbeddingCache(tmp_path, HashingEncoder(DIM).identity, "v1", DIM)
    vectors, found = cache.lookup([text_hash(t) for t in every])
    assert found.all(), f"{int((~found).sum())} of {len(every)} texts lost from the cache"
    np.testing.assert_allclose(vectors, HashingEncoder(DIM).encode(every), rtol=1e-6)
    assert not list(cache.dir.glob(".*.tmp")), "temporary files left behind"


def test_stale_handles_merge_instead_of_clobbering(tmp_path):
    """Two handles opened on the same (empty) folder each add rows: both sets survive, even
    across the compaction the later writes trigger, and an add refreshes the handle's view."""
    identity = HashingEncoder(DIM).identity
    first = EmbeddingCache(tmp_path, identity, "v1", DIM)
    second = EmbeddingCache(tmp_path, identity, "v1", DIM)
    rows = np.eye(DIM, dtype=np.float32)
    for k in range(6):
        first.add([f"a{k}"], rows[k:k + 1], {})
        second.add([f"b{k}"], rows[k + 6:k + 7], {})
    keys = [f"{side}{k}" for side in "ab" for k in range(6)]
    for handle in (second, EmbeddingCache(tmp_path, identity, "v1", DIM)):
        vectors, found = handle.lookup(keys)
        assert found.all() and handle.rebuilt is None
        np.testing.assert_array_equal(vectors, rows[:12])
    assert first.lookup(keys)[1].tolist() == [True] * 11 + [False]  # b5 came after its add


class _CountingEncoder(HashingEncoder):
    """A slow encoder that counts the texts it is asked to encode (shared across threads)."""

    def __init__(self, dim: int, counts: list[int]) -> None:
        super().__init__(dim)
        self.counts = counts

    def encode(self, texts, progress=False):
        time.sleep(0.3)  # long enough for the other caller to miss the cache too
        self.counts.append(len(texts))
        return super().encode(texts, progress)


def test_two_callers_missing_the_same_texts_encode_them_once(tmp_path):
    texts = [f"catalogue item {k}" for k in range(40)]
    counts: list[int] = []
    results: dict[int, tuple] = {}
    barrier = threading.Barrier(2)

    def call(index: int) -> None:
        barrier.wait(timeout=30)
        results[index] = encode_cached(texts, _CountingEncoder(DIM, counts), tmp_path, "v1")

    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert counts == [len(texts)]  # one of them encoded, the other waited and reused
    assert sorted(stats["encoded"] for _, stats in results.values()) == [0, len(texts)]
    np.testing.assert_array_equal(results[0][0], results[1][0])
