"""A random LaMa generator, saved like ``big-lama.safetensors``.

Not tiny: spandrel's `LaMa` class fixes every width and depth of big-lama (its loader reads only
the channel counts), so a smaller generator would not load through the real loader. Full size is
cheap enough: 51 M parameters, 0.2 GB in fp32, built in about a second and run on a 128 px
image in well under one on two CPU cores. Weights are PyTorch's default initialisation under a
fixed seed (the global RNG is left untouched); outputs are meaningless but deterministic.
"""

from __future__ import annotations

from pathlib import Path

import torch

RANDOM_FILE = "big-lama-random.safetensors"


def random_lama_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """The tensors of a randomly initialised big-lama generator, under spandrel's names."""
    from spandrel.architectures.LaMa import LaMa

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = LaMa(in_nc=4, out_nc=3)
    return {k: v.contiguous() for k, v in module.state_dict().items()}


def make_random_lama(folder: Path, seed: int = 0) -> Path:
    """Write ``folder/big-lama-random.safetensors`` (fp32, spandrel's tensor names, ~0.2 GB);
    returns its path."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RANDOM_FILE
    save_file(random_lama_state(seed), str(path), metadata={"format": "pt"})
    return path
