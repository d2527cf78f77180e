"""A tiny random LAION aesthetic predictor, saved like ``sac+logos+ava1-l14-linearMSE.pth``.

The real file is a ``torch.save``-d state dict of the MLP 768 -> 1024 -> 128 -> 64 -> 16 -> 1;
this writes the same layers with the hidden widths of the real one and the input width of the
tiny open_clip encoder (`intenttuner.tiny.image_encoder`, 32), so the two make a working
quality scorer in tests. About 0.17 M parameters.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..families.aesthetic import AestheticMLP

TINY_FILE = "tiny-aesthetic.pth"
HIDDEN = (1024, 128, 64, 16)  # the released predictor's hidden widths
TINY_INPUT_DIM = 32  # embed_dim of the tiny open_clip model (IntentTuner-Tiny-ViT)
# Real scores lie around 4 to 7 on the 1..10 scale. nn.Linear's default initialisation shrinks
# the signal through five layers (random inputs would all score the same to 0.01), so each layer
# is drawn to keep the signal's size (std 1/sqrt(fan-in)) and the last one spreads unit
# vectors to about MID_SCALE +- SPREAD: tests that map scores to [0, 1] see scores that differ
# between images and stay away from the clipped ends.
MID_SCALE = 5.0
SPREAD = 1.0


def make_tiny(folder: Path, input_dim: int = TINY_INPUT_DIM, seed: int = 0) -> Path:
    """Write a random tiny aesthetic predictor into ``folder``; returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    model = AestheticMLP((input_dim, *HIDDEN, 1))
    linears = [layer for layer in model.layers if isinstance(layer, torch.nn.Linear)]
    with torch.no_grad():
        for layer in linears:
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator)
                               / layer.in_features ** 0.5)
            layer.bias.zero_()
        # Each such layer scales |x|^2 by out/in, so a unit input leaves the chain with
        # variance 1/input_dim: scale the last layer to a std of SPREAD.
        linears[-1].weight.mul_(SPREAD * input_dim ** 0.5)
        linears[-1].bias.fill_(MID_SCALE)
    path = folder / TINY_FILE
    torch.save({name: t.detach().clone() for name, t in model.state_dict().items()}, path)
    return path
