"""Data-parallel ANN training under ``torchrun`` (``train.distributed=true``).

Everything that knows about ``torch.distributed`` lives here; the trainer and
the pipeline ask a :class:`Context` (one process: rank 0 of 1) what to do.

Semantics, chosen so that a DDP run trains the same network as one process:

* ``train.batch_size`` is the **global** batch. Every optimiser step takes the
  next ``batch_size`` items of one permutation that all ranks draw from the
  same seeded generator (the one the single-process loader uses, in the same
  order), and each rank takes a contiguous share of them (sizes differ by at
  most one). Each rank's loss is its summed loss × world_size / global batch
  size, so DDP's gradient average is the single-process batch mean exactly,
  the last short batch included.
* The data-order generator's state is checkpointed as before, so resume is
  exact and a resumed run may even use another number of processes.
* BatchNorm: on CUDA the model's BatchNorm layers become SyncBatchNorm
  (statistics over the global batch, as in one process); gloo on CPU has no
  SyncBatchNorm, so there each rank normalises with its own share's statistics
  (running statistics are rank 0's). Dropout masks are drawn per rank.
* Only rank 0 writes (CSV, checkpoints, the cache entry); the others wait at a
  collective and then read the finished ANN from the cache.
"""

from __future__ import annotations

import datetime as dt
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Sampler

from snnx.artifacts import artifact_lock
from snnx.data.order import ignore_stop_signals
from snnx.errors import ConfigError
from snnx.seeding import seed_everything

# Offsets the global RNG of rank r > 0 (dropout, augmentation) away from rank 0's stream.
_RANK_SEED_STRIDE = 1_000_003


def env_world_size() -> int:
    """WORLD_SIZE as torchrun sets it (1 when not started by torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def env_rank() -> int:
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def launched_by_torchrun() -> bool:
    return env_world_size() > 1


def is_helper_process() -> bool:
    """A torchrun process other than rank 0: it trains along but writes and prints nothing."""
    return launched_by_torchrun() and env_rank() != 0


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- collectives (no-ops in one process) ------------------------------------------
    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (picklable Python objects)."""
        if not self.enabled:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list:
        """Every rank's ``value``, in rank order, on every rank."""
        if not self.enabled:
            return [value]
        out: list = [None] * self.world_size
        torch.distributed.all_gather_object(out, value)
        return out

    def all_finite(self, value: torch.Tensor) -> bool:
        """Whether ``value`` is finite on every rank (so all ranks stop together)."""
        ok = torch.tensor([1.0 if bool(torch.isfinite(value).all()) else 0.0])
        if self.enabled:
            ok = ok.to(_collective_device())
            torch.distributed.all_reduce(ok, op=torch.distributed.ReduceOp.MIN)
        return bool(ok.item() > 0)

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on some rank (a stop signal one rank received stops them all)."""
        if not self.enabled:
            return bool(flag)
        value = torch.tensor([1.0 if flag else 0.0], device=_collective_device())
        torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
        return bool(value.item() > 0)

    def total(self, values: list[float]) -> list[float]:
        """Each value summed over the ranks."""
        if not self.enabled:
            return values
        total = torch.tensor(values, dtype=torch.float64, device=_collective_device())
        torch.distributed.all_reduce(total)
        return total.cpu().tolist()


def _collective_device() -> torch.device:
    backend = torch.distributed.get_backend()
    return torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")


def current() -> Context:
    """The process group this process is in (rank 0 of 1 when there is none)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return Context(torch.distributed.get_rank(), torch.distributed.get_world_size(),
                       int(os.environ.get("LOCAL_RANK", "0")))
    return Context()


def setup(device: torch.device) -> Context:
    """Join torchrun's process group (one process: nothing to join).

    gloo on CPU, nccl on CUDA (each process on GPU ``LOCAL_RANK``).
    """
    if not launched_by_torchrun():
        return Context()
    if not torch.distributed.is_available():
        raise ConfigError("this PyTorch build has no torch.distributed, so it cannot train data-parallel.",
                          key="train.distributed", fix="Run without torchrun and with train.distributed=false.")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"torchrun started process {local_rank} on a machine with "
                              f"{torch.cuda.device_count()} CUDA device(s).", key="train.distributed",
                              fix="Use torchrun --nproc_per_node=<number of GPUs>, or device=cpu.")
        torch.cuda.set_device(local_rank)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                             timeout=dt.timedelta(minutes=30))
    return current()


def teardown() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


@contextmanager
def main_lock(directory: Path, ctx: Context) -> Iterator[None]:
    """The artifact lock, taken by rank 0 only (the other ranks must not queue behind their own job)."""
    if ctx.is_main:
        with artifact_lock(directory):
            yield
    else:
        yield


def wrap(model: nn.Module, device: torch.device, ctx: Context, *, find_unused: bool = False) -> nn.Module:
    """``model`` inside DistributedDataParallel (SyncBatchNorm on CUDA); ``model`` itself is trained in place.

    ``find_unused``: some parameters may sit out a forward pass (an epoch hook such as the clip
    activation's ReLU warm-up), which DDP must then be told about.
    """
    if device.type == "cuda":
        # Swaps the BatchNorm children in place, keeping their parameters and buffers.
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [device.index if device.index is not None else ctx.local_rank] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=find_unused)


def decorrelate_rng(ctx: Context) -> None:
    """Give ranks > 0 their own global RNG streams (dropout masks), derived from the seed in use."""
    if ctx.enabled and not ctx.is_main:
        seed_everything(torch.initial_seed() + _RANK_SEED_STRIDE * ctx.rank)


class GlobalBatchSampler(Sampler[list[int]]):
    """Rank ``rank``'s share of each global batch of one shuffled order shared by all ranks.

    The global batches come from the very samplers DataLoader(shuffle=True,
    generator=generator) uses (a RandomSampler in a BatchSampler), drawing from
    the generator exactly as it does, so the union of the ranks' shares at step i
    is the single-process batch i and the generator ends each epoch in the same
    state. (torch's DistributedSampler reseeds per epoch and pads with repeated
    items, so it cannot reproduce the single-process order.) A rank whose share of
    a short last batch is empty gets one item with loss weight 0, so every rank
    takes every step.
    """

    def __init__(self, n: int, batch_size: int, ctx: Context, generator: torch.Generator):
        self.n, self.batch_size, self.ctx, self.generator = n, batch_size, ctx, generator
        # Global batches passed over before the first share is yielded (a mid-epoch resume: snnx.data.order).
        self.skip = 0

    def __len__(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size

    def _share(self, index: int) -> tuple[int, int, int]:
        """(start, stop) of this rank's share within global batch ``index``, and that batch's size."""
        size = min(self.batch_size, self.n - index * self.batch_size)
        base, extra = divmod(size, self.ctx.world_size)
        r = self.ctx.rank
        start = r * base + min(r, extra)
        return start, start + base + (1 if r < extra else 0), size

    def loss_weight(self, index: int) -> float:
        """Factor on this rank's summed loss at step ``index``: world_size / global batch size (0 for padding)."""
        start, stop, size = self._share(index)
        return self.ctx.world_size / size if stop > start else 0.0

    def real_items(self, index: int) -> int:
        start, stop, _ = self._share(index)
        return stop - start

    def __iter__(self) -> Iterator[list[int]]:
        batches = BatchSampler(RandomSampler(range(self.n), generator=self.generator), self.batch_size,
                               drop_last=False)
        skip, self.skip = self.skip, 0  # for one iteration, as snnx.data.order.ResumableBatchSampler's
        for index, batch in enumerate(batches):
            if index < skip:
                continue
            start, stop, _ = self._share(index)
            yield batch[start:stop] or batch[:1]


def train_loader(data, batch_size: int, ctx: Context, generator: torch.Generator, num_workers: int = 0) -> DataLoader:
    """The training loader of this rank (same generator use as the single-process shuffled loader)."""
    return DataLoader(data, batch_sampler=GlobalBatchSampler(len(data), batch_size, ctx, generator),
                      generator=generator, num_workers=num_workers,
                      worker_init_fn=ignore_stop_signals if num_workers else None)
