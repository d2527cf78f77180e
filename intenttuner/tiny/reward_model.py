"""A tiny random reward model, saved as Train Reward Model saves one, for the tiny open_clip
encoder (`intenttuner.tiny.image_encoder`, 32-value embeddings).

Its metadata records that encoder's real signature (built and embedded here, so
`RewardModel.check_encoder` accepts the tiny encoder of the same seed), hidden width 16.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

from ..families.reward_model import RewardMLP, encoder_signature, serialise

TINY_FILE = "tiny-reward.safetensors"
TINY_HIDDEN = 16


def make_tiny(folder: Path, seed: int = 0, encoder=None) -> Path:
    """Write a random tiny reward model into ``folder`` for ``encoder`` (default: the tiny
    open_clip encoder of ``seed``); returns its path."""
    if encoder is None:
        from ..families.image_encoder import load as load_clip
        from .image_encoder import make_tiny as make_tiny_clip

        with tempfile.TemporaryDirectory() as scratch:
            signature = encoder_signature(
                load_clip(make_tiny_clip(Path(scratch), seed=seed), precision="fp32"))
    else:
        signature = encoder_signature(encoder)
    generator = torch.Generator().manual_seed(seed)
    mlp = RewardMLP(signature["embed_dim"], TINY_HIDDEN, dropout=0.0)
    with torch.no_grad():
        for parameter in mlp.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / TINY_FILE
    path.write_bytes(serialise(mlp, {"encoder": json.dumps(signature),
                                     "trained_on": "nothing: random weights (tests)"}))
    return path
