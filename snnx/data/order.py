"""The training order's batches, resumable in the middle of an epoch.

:func:`shuffled_loader` is the loader ``DataLoader(data, batch_size, shuffle=True, generator=g)``
builds — the same RandomSampler in the same BatchSampler, drawing from ``g`` exactly as it does, so the
order (and every trained bit) is unchanged — with one addition: its batch sampler's ``skip``. A
training run resumed at batch k of an epoch restores the generator to its state at the start of that
epoch and sets ``skip = k``: the epoch's permutation is drawn again, and its first k batches are passed
over as index lists, before any image is loaded.

Skipping is exact only where the skipped batches' loading draws nothing that later batches depend on:
in the main process (``num_workers=0``) augmentation draws from the global RNG, which the resumed run
restores from the checkpoint anyway. DataLoader workers seed their own RNGs at the start of each epoch
and augment the batches given to them in turn, so with workers the trainer loads the skipped batches
again and throws them away (``snnx.trainer``).
"""

from __future__ import annotations

import signal
from typing import Iterator

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler


class ResumableBatchSampler(BatchSampler):
    """A BatchSampler whose next iteration passes over its first ``skip`` batches (0: it is BatchSampler).

    ``skip`` holds for one iteration: it is read, and set back to 0, when that iteration starts (at the
    first batch asked for, not when DataLoader makes its iterator)."""

    skip: int = 0

    def __iter__(self) -> Iterator[list[int]]:
        skip, self.skip = self.skip, 0
        for index, batch in enumerate(super().__iter__()):
            if index >= skip:
                yield batch


def ignore_stop_signals(_worker_id: int) -> None:
    """A DataLoader worker's start: a scheduler's stop signal is the main process's to answer.

    Slurm signals every process of a job; a worker that died of SIGTERM would fail the batch the main
    process is finishing before it saves (snnx.preemption). The main process shuts its workers down."""
    for name in ("SIGTERM", "SIGUSR1", "SIGUSR2"):
        signum = getattr(signal, name, None)
        if signum is not None:
            signal.signal(signum, signal.SIG_IGN)


def shuffled_loader(data, batch_size: int, generator: torch.Generator, num_workers: int = 0) -> DataLoader:
    """DataLoader(data, batch_size, shuffle=True, generator=generator), with a resumable batch sampler."""
    sampler = ResumableBatchSampler(RandomSampler(data, generator=generator), batch_size, drop_last=False)
    return DataLoader(data, batch_sampler=sampler, generator=generator, num_workers=num_workers,
                      worker_init_fn=ignore_stop_signals if num_workers else None)
