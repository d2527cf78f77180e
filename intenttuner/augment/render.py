"""Cutting planned items out of their source images (pixels; the plan itself has none)."""

from __future__ import annotations

from PIL import Image

from ..errors import InputError
from .types import Augmented, CropItem

# Named resampling methods a plan may ask for (Pillow's filters).
RESAMPLE = {
    "none": None,
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def render_item(source: Image.Image, item: CropItem) -> Image.Image:
    """The item's image: ``item.region`` of ``source``, scaled to ``item.out_size``."""
    x0, y0, x1, y1 = item.region
    width, height = source.size
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise InputError(f"Item region {item.region} of {item.source_name} lies outside the "
                         f"{width}x{height} image; re-run IntentCrop on these images.")
    image = source.crop(item.region) if item.region != (0, 0, width, height) else source
    if image.size == tuple(item.out_size):
        return image.copy() if image is source else image
    if item.resample not in RESAMPLE or RESAMPLE[item.resample] is None:
        raise InputError(f"Item of {item.source_name} must be resized from {image.size} to "
                         f"{tuple(item.out_size)} but names resampling '{item.resample}'; use "
                         f"one of {', '.join(k for k in RESAMPLE if k != 'none')}.")
    return image.resize(tuple(item.out_size), RESAMPLE[item.resample])


def render_items(augmented: Augmented) -> list[Image.Image]:
    """Every item's image, in plan order."""
    return [render_item(augmented.sources[item.source_index], item)
            for item in augmented.plan.items]
