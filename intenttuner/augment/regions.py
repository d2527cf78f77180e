"""Crop geometry: the source region a crop shows, from a detection box (pure arithmetic).

A crop region is the box, plus a context margin on every side, widened to a trainer-friendly
aspect ratio, moved (never padded) to lie inside the image. Regions are integer XYXY source
pixels, the form `render.render_item` cuts, and always contain the whole (pixel-rounded) box.

Why no padding: a padded border (black, mirrored or blurred) is something the model would learn
as part of the concept; real pixels from further inside the image are always preferable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Box = tuple[float, float, float, float]  # XYXY, source pixels (floats, as the detector gives)
Region = tuple[int, int, int, int]  # XYXY, integer source pixels

# Aspect ratios (width / height) trainers bucket well: SD1.5/SDXL buckets cluster around these,
# and kohya's / OneTrainer's bucketing crops less from images already near a bucket's shape.
ASPECT_RATIOS = {"1:1": 1.0, "3:4": 3 / 4, "4:3": 4 / 3, "2:3": 2 / 3, "3:2": 3 / 2}
# Aspect policies, by CropSettings.aspect:
ASPECT_POLICIES = {
    "nearest": tuple(ASPECT_RATIOS),  # widen the shorter side to the nearest of these
    "square": ("1:1",),  # always 1:1 (the crop widened to a square)
    "free": (),  # box + margin as it is
}


@dataclass(frozen=True)
class Fit:
    """Where a crop lands: its region and what had to give way to put it there."""

    region: Region
    aspect: str  # the ratio chosen ("4:3"), or "free"
    shift: tuple[int, int]  # (dx, dy) the region moved from centred-on-the-box to fit inside
    margin_cut: bool  # the image is too small for the full margin (and ratio) in some direction
    no_ratio_fits: bool = False  # asked for a ratio, but none holds the box inside the image


def clip_box(box: Box, size: tuple[int, int]) -> Box:
    """``box`` clipped to an image of ``size`` = (width, height)."""
    width, height = size
    x0, y0, x1, y1 = box
    return (min(max(x0, 0.0), width), min(max(y0, 0.0), height),
            min(max(x1, 0.0), width), min(max(y1, 0.0), height))


def box_area(box: Box | Region) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def intersection(a: Box | Region, b: Box | Region) -> float:
    return box_area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def iou(a: Box | Region, b: Box | Region) -> float:
    """Intersection over union of two XYXY boxes (0 when either is empty)."""
    inter = intersection(a, b)
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def crop_region(box: Box, size: tuple[int, int], margin: float, aspect: str) -> Fit:
    """The region to cut for a crop of ``box`` in an image of ``size`` = (width, height).

    ``margin``: context added on each side as a fraction of the box's own size (0.25: a quarter
    of the box width left and right, a quarter of its height above and below). ``aspect``: a
    key of `ASPECT_POLICIES`. The margin is exact where the image allows; near an edge the
    region is shifted inside, and where the image is too small for box + margin + ratio the
    margin shrinks (never the box). Among the policy's ratios, the one nearest the box+margin
    shape (in log space, so 3:4 and 4:3 are equally far from 1:1) that fits is taken; if none
    fits (a long thin box in a long thin image), the region is free-form.
    """
    width, height = size
    x0, y0, x1, y1 = clip_box(box, size)
    box_w, box_h = x1 - x0, y1 - y0
    if box_w <= 0 or box_h <= 0:
        raise ValueError(f"box {box} has no area inside the {width}x{height} image")
    content = (box_w * (1 + 2 * margin), box_h * (1 + 2 * margin))
    # The smallest integer span that holds the box: a region never cuts into it.
    span = (math.ceil(x1) - math.floor(x0), math.ceil(y1) - math.floor(y0))
    ratios = ASPECT_POLICIES[aspect]
    shape, chosen = None, "free"
    for name in sorted(ratios, key=lambda r: abs(math.log(ASPECT_RATIOS[r] * content[1]
                                                          / content[0]))):
        shape = _fit_ratio(ASPECT_RATIOS[name], content, span, size)
        if shape is not None:
            chosen = name
            break
    if shape is None:  # free-form: box + margin, as much of it as the image holds
        shape = (min(width, max(span[0], round(content[0]))),
                 min(height, max(span[1], round(content[1]))))
    region_w, region_h = shape
    left, dx = _place(x0, x1, region_w, width)
    top, dy = _place(y0, y1, region_h, height)
    return Fit(region=(left, top, left + region_w, top + region_h), aspect=chosen, shift=(dx, dy),
               margin_cut=region_w < round(content[0]) or region_h < round(content[1]),
               no_ratio_fits=bool(ratios) and chosen == "free")


def _fit_ratio(ratio: float, content: tuple[float, float], span: tuple[int, int],
               size: tuple[int, int]) -> tuple[int, int] | None:
    """(width, height) of the smallest ``ratio`` region holding ``content`` (box + margin),
    shrunk to the image where it must be; None when the box itself no longer fits."""
    width, height = size
    region_h = max(content[1], content[0] / ratio)  # widen the shorter side, never shrink
    region_h = min(region_h, height, width / ratio)  # the image bounds both sides
    region_w = region_h * ratio
    shape = (round(region_w), round(region_h))
    if shape[0] < span[0] or shape[1] < span[1]:
        # the box does not fit at this ratio, unless it misses by the rounding pixel
        if region_w < span[0] - 1 or region_h < span[1] - 1:
            return None
        shape = (max(shape[0], span[0]), max(shape[1], span[1]))
    return (min(shape[0], width), min(shape[1], height))


def _place(low: float, high: float, length: int, limit: int) -> tuple[int, int]:
    """Start of a ``length`` span centred on [low, high], moved inside [0, limit] and kept
    around [floor(low), ceil(high)]; and how far it moved from centred."""
    centred = round((low + high - length) / 2)
    start = min(centred, math.floor(low))  # hold the box's first pixel...
    start = max(start, math.ceil(high) - length)  # ...and its last
    start = min(max(start, 0), limit - length)  # inside the image
    return start, start - centred
