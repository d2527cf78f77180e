"""A small SD 1.5 checkpoint that ComfyUI's own CheckpointLoaderSimple loads, for the tests
that train a LoRA with our trainer and apply it through ComfyUI.

The tiny random checkpoints (`intenttuner.tiny.base_model`) are too small for ComfyUI: it
recognises SD 1.5 by a 320-channel UNet with 768-wide cross-attention ("Could not detect model
type" otherwise), and builds CLIP-L and the VAE at their fixed full sizes. So this one is
`intenttuner.tiny.full_size`'s SD 1.5 (CLIP ViT-L/14's text tower, the SD VAE, fp16, original
single-file layout) with a UNet of only two levels (320/640 channels, one layer each): 287 M
parameters, 0.57 GB. Reused when the folder already has it.
"""

from __future__ import annotations

from pathlib import Path

UNET = {"block_out_channels": [320, 640], "layers_per_block": 1, "sample_size": 8,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"]}


def make_comfy_sd15_checkpoint(folder: Path) -> Path:
    """Write the small SD 1.5 checkpoint (seed 0) into ``folder`` and return its path."""
    from intenttuner.tiny.full_size import make_full_size_checkpoint

    return make_full_size_checkpoint(Path(folder), "sd15", unet_overrides=UNET)
