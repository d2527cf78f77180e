"""The contour of a removal mask drawn on a (downscaled) image: what both previews show.

Used by the IntentCrop tiles (`preview`) and IntentInpaint's before/after (`inpaint_preview`).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

Colour = tuple[int, int, int]


def outlined(image: Image.Image, mask: np.ndarray | None, colour: Colour,
             width: int = 2) -> Image.Image:
    """A copy of ``image`` (RGB) with the contour of ``mask`` drawn in ``colour``.

    ``mask``: H x W bool, any size; it is scaled to the image (nearest neighbour). The contour
    is the ``width`` px just inside the mask's edge (two pixels show on photos at any size), so
    the line stays on the removed side; the image border counts as an edge, so a mask that runs
    off the image is closed there. No mask, or an empty one: ``image`` itself.
    """
    if mask is None or not mask.any():
        return image
    scaled = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(
        image.size, Image.Resampling.NEAREST)) > 127
    inner = scaled
    for _ in range(width):
        inner = erode(inner)
    pixels = np.array(image.convert("RGB"))
    pixels[scaled & ~inner] = colour
    return Image.fromarray(pixels)


def erode(mask: np.ndarray) -> np.ndarray:
    """4-neighbour erosion by one pixel (the image border counts as outside)."""
    padded = np.pad(mask, 1, constant_values=False)
    return (padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1]
            & padded[1:-1, :-2] & padded[1:-1, 2:])
