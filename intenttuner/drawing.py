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


def fit_text(text: str, font, width: int) -> str:
    """``text`` shortened with "…" until it is at most ``width`` px wide in ``font``."""
    while len(text) > 1 and font.getlength(text) > width:
        text = text[:-2] + "…"
    return text
