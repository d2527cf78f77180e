"""Tiny random models of every family, written in the real on-disk formats (one module per
family), plus a synthetic test image. Used by the tests and ``python -m intenttuner smoke``."""

from __future__ import annotations

import numpy as np
from PIL import Image


def synthetic_image(width: int = 64, height: int = 48, seed: int = 0) -> Image.Image:
    """A deterministic RGB image with some structure (gradient + noise), for smoke runs."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    noise = rng.integers(0, 64, (height, width, 3)).astype(np.float32)
    pixels = np.clip(ramp * np.array([1.0, 0.6, 0.3]) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, mode="RGB")
