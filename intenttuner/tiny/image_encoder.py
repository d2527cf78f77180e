"""A tiny random open_clip model, saved like a real ``open_clip_model.safetensors``.

Architecture ``IntentTuner-Tiny-ViT`` (``models/configs/open_clip/IntentTuner-Tiny-ViT.json``:
64-pixel input, 2+2 blocks of width 64, the real 49408-token vocabulary and 77-token context so
open_clip's own tokenizer applies). The file is named ``<arch>.<tag>.safetensors`` exactly like
the default weights, so `intenttuner.families.image_encoder.load` reads it the same way.
"""

from __future__ import annotations

from pathlib import Path

import torch

TINY_ARCH = "IntentTuner-Tiny-ViT"
TINY_FILE = f"{TINY_ARCH}.random.safetensors"


def make_tiny(folder: Path, seed: int = 0) -> Path:
    """Write a random tiny open_clip checkpoint into ``folder``; returns its path."""
    import open_clip
    from safetensors.torch import save_file

    from ..families.image_encoder import quiet_random_init_warning, register_bundled_configs

    register_bundled_configs()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)  # open_clip initialises from the global generator
    with quiet_random_init_warning():
        model = open_clip.create_model(TINY_ARCH, pretrained=None)
    state = {name: t.detach().contiguous() for name, t in model.state_dict().items()}
    path = folder / TINY_FILE
    save_file(state, str(path))
    return path
