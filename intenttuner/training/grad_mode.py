"""Training from inside a host that runs everything under ``torch.inference_mode()``.

ComfyUI executes every node inside ``torch.inference_mode()`` (``execution.py``), so a model a
loader node built is made of *inference tensors*, and autograd is off while a node runs. Both
break training: no graph is recorded ("element 0 of tensors does not require grad"), and once
inference mode is left, an inference tensor can neither get ``requires_grad`` nor be saved for
backward. ComfyUI's own TrainLoraNode leaves inference mode too; its weights are copied by its
ops on every call, ours are used in place, so ours are made ordinary tensors once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import nn


@contextlib.contextmanager
def grad_enabled() -> Iterator[None]:
    """Autograd on, inference mode off, whatever the caller's mode (restored afterwards)."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def ordinary_tensors(modules: Iterable[nn.Module]) -> int:
    """Replace every inference tensor (parameter or buffer) of ``modules`` by an ordinary copy,
    in place, so autograd may use it; tied weights stay tied. Returns how many were replaced
    (0 for a model loaded outside inference mode: then nothing is copied). One tensor at a
    time: the original is freed as soon as its copy took its place."""
    places: dict[int, list[tuple[nn.Module, str]]] = {}
    originals: dict[int, torch.Tensor] = {}
    for module in modules:
        for owner in module.modules():
            for name, tensor in [*owner.named_parameters(recurse=False),
                                 *owner.named_buffers(recurse=False)]:
                if tensor is not None and tensor.is_inference():
                    originals[id(tensor)] = tensor
                    places.setdefault(id(tensor), []).append((owner, name))
    count = len(originals)
    with torch.inference_mode(False):
        for key in list(originals):
            tensor = originals.pop(key)
            copy = tensor.clone()
            if isinstance(tensor, nn.Parameter):
                copy = nn.Parameter(copy, requires_grad=tensor.requires_grad)
            del tensor
            for owner, name in places.pop(key):
                setattr(owner, name, copy)
    return count
