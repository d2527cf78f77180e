"""A tiny random DINO identity encoder, in the file layout of facebook/dino-vits16.

``tiny-dino/`` holds what users download: ``config.json`` (a ``ViTModel`` config), the weights in
``model.safetensors`` under the Hub's tensor names (``save_pretrained`` writes those with
transformers 4 and 5 alike) and ``preprocessor_config.json`` as facebook/dino-vits16 has it (a
``ViTFeatureExtractor`` with ImageNet's mean and std). 32-pixel input, 8-pixel patches, 2 blocks
of width 32: about 24 k parameters.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..families.identity_encoder import IMAGENET_MEAN, IMAGENET_STD

TINY_DIR = "tiny-dino"
TINY_CONFIG = {
    "image_size": 32, "patch_size": 8, "hidden_size": 32, "num_hidden_layers": 2,
    "num_attention_heads": 2, "intermediate_size": 64,
    # ViT's 0.02 leaves a random model's CLS token nearly the same for every image (cosine
    # 0.97 between unrelated noise images); 0.2 keeps similar images similar (0.999) and
    # unrelated ones apart (0.3-0.7), as the scoring tests need.
    "initializer_range": 0.2,
}


def make_tiny(folder: Path, seed: int = 0) -> Path:
    """Write a random tiny DINO folder ``folder/tiny-dino``; returns it."""
    from transformers import ViTConfig, ViTModel

    target = Path(folder) / TINY_DIR
    target.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)  # transformers initialises from the global generator
    model = ViTModel(ViTConfig(**TINY_CONFIG), add_pooling_layer=False)
    model.save_pretrained(target)  # model.safetensors + config.json, the Hub's tensor names
    preprocessor = {
        "do_normalize": True, "do_resize": True, "feature_extractor_type": "ViTFeatureExtractor",
        "image_mean": list(IMAGENET_MEAN), "image_std": list(IMAGENET_STD), "resample": 2,
        "size": TINY_CONFIG["image_size"],
    }
    (target / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2) + "\n")
    return target
