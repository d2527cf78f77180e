"""Small helpers shared by the preview renderers."""

from __future__ import annotations

from functools import lru_cache

from PIL import ImageFont


@lru_cache(maxsize=8)
def font(size: int):
    """Pillow's built-in scalable font at ``size`` pixels (bitmap font on Pillow < 10.1)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()
