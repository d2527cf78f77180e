"""The batching loop the embedding models share (open_clip, DINO): progress, Cancel, L2
normalisation, results on the CPU in float32.

    vectors = embed_in_batches(managed, images, 32, "Embedding images", encode, dim=512)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..errors import InputError
from ..runtime import ManagedModel, get_runtime

# encode(model, chunk) -> (len(chunk), D) tensor, in any dtype and on any device.
Encode = Callable[[torch.nn.Module, list], torch.Tensor]


def check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}.")


def embed_in_batches(managed: ManagedModel, items: Sequence, batch_size: int, desc: str,
                     encode: Encode, dim: int) -> torch.Tensor:
    """Run ``encode`` over ``items`` ``batch_size`` at a time; returns (N, ``dim``) float32 CPU
    vectors of unit L2 norm (a (0, ``dim``) tensor for no items, without loading the model).

    Cancel is checked before each batch and the runtime's progress bar advances per item, so a
    long list shows progress on the node and stops between batches.
    """
    check_batch_size(batch_size)
    items = list(items)
    if not items:
        return torch.zeros((0, dim), dtype=torch.float32)
    runtime = get_runtime()
    model = managed.load()
    out = []
    with runtime.progress(total=len(items), desc=desc) as bar, torch.inference_mode():
        for start in range(0, len(items), batch_size):
            runtime.check_interrupted()
            chunk = items[start:start + batch_size]
            vectors = encode(model, chunk).float()
            out.append(torch.nn.functional.normalize(vectors, dim=-1).cpu())
            bar.update(len(chunk))
    return torch.cat(out)


def device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
