"""A small SD 1.5 checkpoint that ComfyUI's own CheckpointLoaderSimple loads, for the tests
that train a LoRA with our trainer and apply it through ComfyUI.

The tiny random checkpoints (`intenttuner.tiny.base_model`) are too small for ComfyUI: it
recognises SD 1.5 by a 320-channel UNet with 768-wide cross-attention ("Could not detect model
type" otherwise), and builds CLIP-L and the VAE at their fixed full sizes. So this one is
`intenttuner.tiny.full_size`'s SD 1.5 (CLIP ViT-L/14's text tower, the SD VAE, fp16, original
single-file layout) with a UNet of only two levels (320/640 channels, one layer each): 287 M
parameters, 0.57 GB. Reused when the folder already has it, and written once per test session
into the session's folder `CACHE_ENV` names (tests/training_fixtures.py sets it; processes the
tests start inherit it), then linked where a test wants it.
"""

from __future__ import annotations

import os
from pathlib import Path

UNET = {"block_out_channels": [320, 640], "layers_per_block": 1, "sample_size": 8,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"]}


CACHE_ENV = "INTENTTUNER_TEST_CHECKPOINTS"  # the session's folder of shared test checkpoints


def make_comfy_sd15_checkpoint(folder: Path) -> Path:
    """The small SD 1.5 checkpoint (seed 0) in ``folder``: a link to the session's copy when
    `CACHE_ENV` is set (written there on first use), else written into ``folder``."""
    from intenttuner.tiny.full_size import make_full_size_checkpoint

    folder = Path(folder)
    shared = os.environ.get(CACHE_ENV)
    if not shared:
        return make_full_size_checkpoint(folder, "sd15", unet_overrides=UNET)
    source = make_full_size_checkpoint(Path(shared), "sd15", unet_overrides=UNET)
    target = folder / source.name
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source)
    return target
