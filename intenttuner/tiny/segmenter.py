"""A tiny random Segment Anything model, saved like the real ``sam_vit_*.pth`` files.

The real checkpoints are ``torch.save``-d plain state dicts; this writes the same, so
`intenttuner.families.segmenter.load` reads both through one code path (shape inference
included). 128-pixel input, 2 ViT blocks of width 32: about 0.2 M parameters.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..families.segmenter import SamArch, build_sam

TINY_FILE = "sam_vit_tiny_random.pth"

TINY_ARCH = SamArch(
    embed_dim=32,
    depth=2,
    num_heads=2,
    global_attn_indexes=(1,),
    window_size=4,  # block 0 uses 4x4-patch windows, so windowed attention is exercised
    patch_size=16,
    image_size=128,
    prompt_embed_dim=32,
    mask_in_chans=4,
    decoder_depth=2,
    decoder_mlp_dim=64,
    iou_head_hidden_dim=32,
)


def make_tiny(folder: Path, seed: int = 0) -> Path:
    """Write a random tiny SAM checkpoint into ``folder``; returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    model = build_sam(TINY_ARCH)
    state = {}
    for name, tensor in model.state_dict().items():
        # The image encoder was built on the meta device; give every tensor random values
        # (SAM zero-initialises positional tables, which would hide indexing mistakes); std 0.5
        # gives masks that cover part of the image rather than nothing.
        state[name] = torch.randn(tensor.shape, generator=generator) * 0.5
    path = folder / TINY_FILE
    torch.save(state, path)
    return path
