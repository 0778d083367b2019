"""Where the Trainer meets process topology. Single-process today; DDP plugs in here later.

A strategy wraps the module, says which process writes files, and averages scalars across
processes. The Trainer calls nothing else, so a ``torchrun`` strategy only has to implement
these four members (and shard ``training_batches`` by ``rank``/``world_size``).
"""

from __future__ import annotations


class LocalStrategy:
    """One process, no wrapping."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, module):
        return module

    def mean(self, value: float) -> float:
        return value
