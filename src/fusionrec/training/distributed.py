"""Where the Trainer meets process topology: one process, or DDP under ``torchrun``.

A strategy wraps the module, says which process writes files, shards each epoch's batches,
runs validation and averages scalars across processes. The Trainer calls nothing else.

``DDPStrategy`` (started by ``torchrun``, which sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``)
splits every batch the model yields into ``world_size`` equal row slices, one per rank, instead
of dealing whole batches out: with mean-reduced losses DDP's averaged gradient then equals the
single-process gradient of the full batch, so a DDP run takes the same steps as one process and
reaches the same metrics up to float rounding (``tests/test_ddp.py`` checks this). Validation
runs on rank 0 and its metrics are broadcast, so every rank makes the same early-stopping call.
Collectives go through gloo for CPU tensors and NCCL for CUDA tensors; which group a launch
joins follows ``trainer.device`` (:func:`process_group_backend`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any, Callable, Iterable, Iterator


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

    def shard(self, batches: Iterable[Any]) -> Iterable[Any]:
        return batches

    def on_main(self, action: Callable[[], Any]) -> Any:
        """``action()`` computed on rank 0 and handed to every rank."""
        return action()

    def barrier(self) -> None:
        return None

    def close(self) -> None:
        return None


def torchrun_world_size() -> int:
    """Processes ``torchrun`` started (1 outside torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def process_group_backend(device: str, local_rank: int, gpus: int) -> tuple[str, int | None]:
    """``(backend, gpu)`` for one torchrun rank: ``cpu:gloo,cuda:nccl`` and GPU ``local_rank``
    when ``device`` (``trainer.device``) means CUDA and this rank has a GPU, else plain gloo.
    ``cuda`` asked for without a GPU for this rank, or ``cuda:N`` (all ranks on one GPU, which
    NCCL refuses), is a one-line error."""
    from fusionrec.devices import DeviceError, device_spec_error

    if device_spec_error(device):
        raise DeviceError(f"trainer.device {device_spec_error(device)}, got {device!r}")
    if device.startswith("cuda:"):
        raise DeviceError(f"trainer.device {device!r} pins one GPU; under torchrun use cuda or "
                          "auto (rank r takes cuda:LOCAL_RANK)")
    has_gpu = local_rank < gpus
    if device == "cuda" and not has_gpu:
        raise DeviceError(f"trainer.device cuda, but rank with LOCAL_RANK={local_rank} sees "
                          f"{gpus} GPU(s); start at most {gpus} processes per node")
    if device == "cpu" or not has_gpu:
        return "gloo", None
    return "cpu:gloo,cuda:nccl", local_rank


class DDPStrategy(LocalStrategy):
    """DistributedDataParallel over the processes of a ``torchrun`` launch.

    Joins (or reuses) the default process group chosen by :func:`process_group_backend` for
    ``device`` (``trainer.device``): with a GPU per rank, NCCL (and gloo for the CPU scalars of
    ``mean``/``on_main``), each rank on ``cuda:LOCAL_RANK``; on CPUs, gloo. Modules whose
    parameters are on a GPU are wrapped for that device; CPU modules all-reduce through gloo.
    ``close`` leaves the group only if this strategy created it.
    """

    def __init__(self, device: str = "auto") -> None:
        import torch
        import torch.distributed as dist

        self._owns_group = not dist.is_initialized()
        if self._owns_group:
            local_rank = int(os.environ.get("LOCAL_RANK", "0"))
            gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
            backend, gpu = process_group_backend(device, local_rank, gpus)
            if gpu is not None:  # so that trainer.device cuda/auto resolves to this rank's GPU
                torch.cuda.set_device(gpu)
            dist.init_process_group(backend=backend)
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()

    def wrap(self, module):
        from torch.nn.parallel import DistributedDataParallel

        param = next(iter(module.parameters()), None)
        if param is not None and param.is_cuda:
            return DistributedDataParallel(module, device_ids=[param.device.index])
        return DistributedDataParallel(module)

    def mean(self, value: float) -> float:
        import torch
        import torch.distributed as dist

        tensor = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world_size

    def shard(self, batches: Iterable[Any]) -> Iterator[Any]:
        """This rank's slice of every batch. Every rank draws the same batches (same seeds);
        batches with fewer rows than ranks are skipped by all ranks alike, so each rank takes
        the same number of steps (DDP's all-reduce needs that). Batches that cannot be sliced
        by rows are dealt out whole, round-robin, dropping the last ``< world_size``."""
        pending: list[Any] = []
        for batch in batches:
            rows = batch_rows(batch)
            if rows is None:
                pending.append(batch)
                if len(pending) == self.world_size:
                    yield pending[self.rank]
                    pending = []
            elif rows >= self.world_size:
                yield slice_batch(batch, self.rank, self.world_size)

    def on_main(self, action: Callable[[], Any]) -> Any:
        import torch.distributed as dist

        box = [action() if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()

    def close(self) -> None:
        import torch.distributed as dist

        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()


def strategy_from_env(device: str = "auto") -> LocalStrategy:
    """``DDPStrategy`` when launched by torchrun with more than one process, else local."""
    return DDPStrategy(device) if torchrun_world_size() > 1 else LocalStrategy()


@contextlib.contextmanager
def launch(device: str = "auto") -> Iterator[LocalStrategy]:
    """The strategy for this process (``device``: ``trainer.device``), closed (process group
    left) on exit."""
    strategy = strategy_from_env(device)
    try:
        yield strategy
    finally:
        strategy.close()


# -- slicing batches by rows ------------------------------------------------------------------
def _leaves(batch: Any) -> Iterator[Any]:
    if isinstance(batch, (tuple, list)):
        for value in batch:
            yield from _leaves(value)
    elif isinstance(batch, dict):
        for value in batch.values():
            yield from _leaves(value)
    elif dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        for f in dataclasses.fields(batch):
            yield from _leaves(getattr(batch, f.name))
    elif batch is not None:
        yield batch


def batch_rows(batch: Any) -> int | None:
    """The shared leading size of every array/tensor in ``batch`` (tuples, lists, dicts and
    dataclasses are searched; ``None`` entries ignored); ``None`` if they disagree, there are
    none, or something else (a graph, a string) is in there."""
    sizes = set()
    for leaf in _leaves(batch):
        shape = getattr(leaf, "shape", None)
        if shape is None or len(shape) == 0:
            return None
        sizes.add(int(shape[0]))
    return sizes.pop() if len(sizes) == 1 else None


def slice_batch(batch: Any, rank: int, world_size: int) -> Any:
    """Rows ``[start:stop)`` of every array/tensor in ``batch``, where the rows are cut into
    ``world_size`` near-equal contiguous parts and this is part ``rank``."""
    n = batch_rows(batch)
    if n is None:
        raise TypeError(f"cannot slice a batch of type {type(batch).__name__} by rows")
    start, stop = rank * n // world_size, (rank + 1) * n // world_size
    return _take(batch, start, stop)


def _take(batch: Any, start: int, stop: int) -> Any:
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(_take(v, start, stop) for v in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(_take(v, start, stop) for v in batch)
    if isinstance(batch, dict):
        return {k: _take(v, start, stop) for k, v in batch.items()}
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return dataclasses.replace(batch, **{f.name: _take(getattr(batch, f.name), start, stop)
                                             for f in dataclasses.fields(batch) if f.init})
    if batch is None:
        return None
    return batch[start:stop]
