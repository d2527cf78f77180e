"""Which cached images each step trains on: a deterministic order per epoch, bucket by bucket.

Epoch ``e`` of a run with seed ``s`` is a pure function of (s, e): every image repeated its
``repeats`` times, shuffled within its bucket, cut into global batches of ``batch_size x
world_size`` (one bucket per batch, since a batch is one tensor), and the batches shuffled.
Flips and caption dropout are decided per sample from the same generator. So a resumed run
needs only (epoch, batches done) to continue exactly where it stopped, and every process of a
multi-GPU run computes the same plan and takes its own shard of each batch.

A bucket whose images do not fill its last batch is topped up with images of the same bucket
from the start of its shuffled order (each process must get a full shard, and the step's
batch size stays what the learning rate was tuned for).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

SEED_MIX = 6364136223846793005  # Knuth's LCG multiplier: spreads (seed, epoch) over 64 bits


@dataclass(frozen=True)
class Sample:
    image: int            # position in LatentCache.images
    flip: bool            # train on the horizontally flipped latents
    drop_caption: bool    # train on the empty caption (caption dropout)


Plan = list[list[Sample]]


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * SEED_MIX + epoch + 1) % 2**64)


def epoch_plan(by_bucket: Mapping[tuple[int, int], Sequence[int]], repeats: Sequence[int],
               seed: int, epoch: int, global_batch: int, flip: bool = False,
               caption_dropout: float = 0.0) -> Plan:
    """The batches of epoch ``epoch`` (see the module docstring). ``by_bucket``: bucket ->
    positions of its images (LatentCache.by_bucket()); ``repeats``: per position."""
    generator = epoch_generator(seed, epoch)
    batches: list[list[int]] = []
    for bucket in sorted(by_bucket):
        entries = [p for p in by_bucket[bucket] for _ in range(repeats[p])]
        if not entries:
            continue
        order = torch.randperm(len(entries), generator=generator).tolist()
        shuffled = [entries[i] for i in order]
        missing = -len(shuffled) % global_batch
        shuffled += [shuffled[i % len(shuffled)] for i in range(missing)]
        batches += [shuffled[i:i + global_batch] for i in range(0, len(shuffled), global_batch)]
    order = torch.randperm(len(batches), generator=generator).tolist()
    plan: Plan = []
    for index in order:
        draws = torch.rand((len(batches[index]), 2), generator=generator).tolist()
        plan.append([Sample(image=p, flip=flip and f < 0.5, drop_caption=d < caption_dropout)
                     for p, (f, d) in zip(batches[index], draws, strict=True)])
    return plan


class BatchStream:
    """Global batches one after another, across epochs; ``position`` is what a checkpoint
    stores to continue the same stream (the epoch and the batches of it already taken)."""

    def __init__(self, plan_for: Callable[[int], Plan], epoch: int = 0, done: int = 0):
        self.plan_for = plan_for
        self.epoch = epoch
        self.done = done
        self.plan = plan_for(epoch)
        self.batches_per_epoch = len(self.plan)
        if not self.batches_per_epoch:
            raise ValueError("an epoch without batches: the cache holds no images")

    @property
    def position(self) -> tuple[int, int]:
        return self.epoch, self.done

    def seek(self, epoch: int, done: int) -> None:
        """Continue at batch ``done`` of epoch ``epoch`` (a checkpoint's position)."""
        if epoch != self.epoch:
            self.plan = self.plan_for(epoch)
        self.epoch, self.done = epoch, done

    def next(self) -> list[Sample]:
        if self.done >= len(self.plan):
            self.epoch, self.done = self.epoch + 1, 0
            self.plan = self.plan_for(self.epoch)
        batch = self.plan[self.done]
        self.done += 1
        return batch
