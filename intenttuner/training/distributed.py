"""Several processes training one LoRA (data parallel), or one process doing it all.

Both launchers people use set the same environment contract for every process they start:
``torchrun --nproc_per_node N`` and ``accelerate launch --multi_gpu --num_processes N`` (which
runs torchrun underneath) export ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``. We read that contract and use ``torch.distributed`` directly instead of
accelerate's ``Accelerator``: the Accelerator takes over device placement and wraps models and
optimizers itself, while our modules are placed by the host's model manager (ComfyUI's, through
`runtime.get_runtime().manage`), so the two would fight over where a weight lives. All we need
from a launcher is the process group; DDP, ``no_sync`` and an all-reduce do the rest.

Every process trains on its own shard of each global batch; DDP averages the LoRA gradients
after backward, so all processes take identical optimizer steps and end with identical weights.
Only the main process (rank 0) writes files.

With one process (no launcher, or ``WORLD_SIZE=1``) no process group is created at all: every
method below is then a no-op or the identity, so the trainer has a single code path.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as tdist
from torch import nn

from ..errors import InputError

log = logging.getLogger(__name__)

# accelerate exports this as "True" for `accelerate launch --cpu`: train on the CPU even where
# a GPU exists.
ACCELERATE_CPU_ENV = "ACCELERATE_USE_CPU"


@dataclass
class Distributed:
    """This process's place among the training processes (see the module docstring)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    # True when `setup_distributed` created the process group: only then does `close` end it
    # (a group the host made, e.g. a script that called init_process_group, stays its own).
    owns_group: bool = field(default=False, repr=False)

    @property
    def is_main(self) -> bool:
        """The process that logs and writes files."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """True when there is a process group (more than one process)."""
        return self.world_size > 1

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` in DistributedDataParallel when several processes train, else itself.

        DDP broadcasts rank 0's parameters and buffers when it wraps, so every process starts
        from the same LoRA initialisation whatever its seed did. ``find_unused_parameters`` is
        off: frozen weights have no gradient and are not DDP's business (it only reduces
        parameters that require grad), and every LoRA weight takes part in every forward.
        """
        if not self.enabled:
            return module
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=device_ids,
                                       find_unused_parameters=False)

    @contextlib.contextmanager
    def no_sync(self, module: nn.Module, active: bool) -> Iterator[None]:
        """While ``active``, skip DDP's gradient all-reduce on ``module``: for the micro-steps
        of gradient accumulation before the last one, whose gradients are only summed locally
        (the last micro-step's backward reduces the sum once)."""
        from torch.nn.parallel import DistributedDataParallel

        if active and isinstance(module, DistributedDataParallel):
            with module.no_sync():
                yield
        else:
            yield

    def shard(self, items: list) -> list:
        """This process's part of a global batch: every ``world_size``-th item from ``rank``.

        A global batch of ``batch_size * world_size`` items gives each process ``batch_size``;
        the processes together see each item exactly once.
        """
        return list(items[self.rank::self.world_size])

    def barrier(self) -> None:
        """Wait until every process got here (e.g. rank 0 finished writing a file)."""
        if self.enabled:
            tdist.barrier()

    def mean(self, value: float) -> float:
        """``value`` averaged over the processes (the logged loss of a global step)."""
        if not self.enabled:
            return float(value)
        tensor = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        tdist.all_reduce(tensor, op=tdist.ReduceOp.SUM)
        return float(tensor.item()) / self.world_size

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (any picklable object) on every process: for decisions only the
        main process may take, such as the run's free name on disk."""
        if not self.enabled:
            return value
        box = [value if self.is_main else None]
        tdist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        """End the process group if `setup_distributed` created it (safe to call twice, and
        without one)."""
        if self.owns_group and tdist.is_initialized():
            tdist.destroy_process_group()
        self.owns_group = False


def setup_distributed(default_device: torch.device) -> Distributed:
    """The `Distributed` of this process, from the launcher's environment (module docstring).

    ``default_device`` is where a single process trains (the runtime's device). With several
    processes, each uses ``cuda:LOCAL_RANK`` and NCCL when ``default_device`` is a CUDA device,
    else the CPU and gloo. ``WORLD_SIZE`` unset or 1: no process group.
    """
    default_device = torch.device(default_device)
    if os.environ.get(ACCELERATE_CPU_ENV, "").lower() == "true":
        default_device = torch.device("cpu")
    world_size = _env_int("WORLD_SIZE", 1)
    if world_size <= 1:
        return Distributed(device=default_device)
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise InputError(f"WORLD_SIZE is {world_size} but {name} is not set. Start several "
                             "processes with `torchrun --nproc_per_node N -m intenttuner train "
                             "CONFIG` (or `accelerate launch --multi_gpu --num_processes N ...`), "
                             "which set it.")
    if default_device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise InputError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} "
                             "CUDA device(s): start at most one process per GPU.")
        device, backend = torch.device("cuda", local_rank), "nccl"
        torch.cuda.set_device(device)
    else:
        if default_device.type != "cpu":  # mps, xpu...: no multi-process backend we use
            log.warning("%d training processes on %s: torch.distributed has no backend for "
                        "%s here, so every process trains on the CPU (gloo) instead; run one "
                        "process to train on %s.", world_size, default_device,
                        default_device.type, default_device)
        device, backend = torch.device("cpu"), "gloo"
    owns_group = not tdist.is_initialized()
    if owns_group:
        tdist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    log.info("training process %d of %d on %s (%s)", rank, world_size, device, backend)
    return Distributed(rank=rank, world_size=world_size, local_rank=local_rank, device=device,
                       owns_group=owns_group)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise InputError(f"The environment variable {name} is {value!r}, not a whole number; "
                         "it is set by torchrun / accelerate launch.") from None
