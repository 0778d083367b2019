"""Inter-process file locks (POSIX ``flock``), shared by the embedding cache and the benchmark.

A lock file is created on first use and never deleted, so every process locks the same inode.
The kernel drops a lock when its holder exits, crashed or not: no stale locks to clean up.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def try_exclusive(path: str | os.PathLike, *, wait: bool = False) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (its folder is created if needed). With ``wait``,
    wait for another holder to let go; without, yield ``False`` at once (holding nothing)
    when another open of ``path`` holds it."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def exclusive(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``path``, waiting for another holder to let go."""
    with try_exclusive(path, wait=True):
        yield
