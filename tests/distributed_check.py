"""Run under ``torchrun --nproc_per_node 2``: trains a small module the way the trainer uses
`intenttuner.training.distributed` (each process its own shard of every global batch, gradient
accumulation with ``no_sync``), next to an unwrapped copy taken after DDP's start-up broadcast:
the same starting weights and data, so the all-reduce is the only difference. Prints one JSON
line per process (read by tests/test_training_distributed.py).

    torchrun --standalone --nproc_per_node 2 tests/distributed_check.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intenttuner.training.distributed import setup_distributed  # noqa: E402

ACCUMULATION = 2
STEPS = 3


def main() -> None:
    dist = setup_distributed(torch.device("cpu"))
    torch.manual_seed(100 + dist.rank)  # deliberately different starting weights per process
    model = torch.nn.Linear(4, 1)
    seeded = model.weight.detach().flatten().tolist()
    wrapped = dist.wrap(model)  # DDP copies rank 0's weights to every process here
    started = model.weight.detach().flatten().tolist()
    alone = torch.nn.Linear(4, 1)
    alone.load_state_dict(model.state_dict())  # rank 0's weights, as the wrapped model's
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (model, alone)]
    data = torch.Generator().manual_seed(0)  # the same global batches everywhere
    grads = {}  # the first step's gradient inside no_sync (local) and after the last micro-step
    for step in range(STEPS):
        for micro in range(ACCUMULATION):
            batch = torch.randn(2 * dist.world_size, 4, generator=data)
            mine = torch.stack(dist.shard(list(batch)))
            last = micro == ACCUMULATION - 1
            with dist.no_sync(wrapped, active=not last):
                wrapped(mine).pow(2).mean().backward()
            alone(mine).pow(2).mean().backward()
            if step == 0:
                grads["synced" if last else "local"] = model.weight.grad.flatten().tolist()
        for optimizer in optimizers:
            optimizer.step()
            optimizer.zero_grad()
    dist.barrier()
    result = {"rank": dist.rank, "world_size": dist.world_size, "is_main": dist.is_main,
              "seeded": seeded, "started": started,
              "weights": model.weight.detach().flatten().tolist(),
              "alone": alone.weight.detach().flatten().tolist(), "grads": grads,
              "mean": dist.mean(float(dist.rank)), "broadcast": dist.broadcast(f"r{dist.rank}"),
              "shard": dist.shard(list(range(6)))}
    dist.close()
    print(json.dumps(result), flush=True)  # noqa: T201 - one JSON line per process


if __name__ == "__main__":
    main()
