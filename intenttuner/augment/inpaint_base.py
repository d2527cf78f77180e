"""What every inpainting backend shares: settings, the `Backend` record, and work regions.

A backend never sees a whole photo. For each image, `plan_region` picks a *region*: the mask's
bounding box plus context (the backend says how much, and at what scale it wants to work), grown
into real image pixels up to a size the model accepts (a multiple of 8 for LaMa and Stable
Diffusion) and padded only where the image itself is too small. `cut` takes the region out
(resized to the work size, padded), the backend fills it, and `paste` resizes the result back
and copies **only the masked pixels** into a copy of the original: every pixel outside the mask
is the input's own, whatever the model or a VAE round trip did to the rest of its output.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InputError

Box = tuple[int, int, int, int]  # XYXY integer pixels, x1/y1 exclusive
CLASSICAL_METHODS = ("telea", "navier-stokes")  # cv2.INPAINT_TELEA, cv2.INPAINT_NS


@dataclass(frozen=True)
class InpaintSettings:
    method: str = "telea"  # classical: "telea" (fast marching) or "navier-stokes"
    radius: int = 5  # classical: neighbourhood (px) each filled pixel is computed from
    context: float = 0.5  # learned backends: context around the mask, x its box's longer side
    min_context_px: int = 64  # ... and at least this many pixels
    max_side: int = 1024  # lama: longer side of the work region; larger regions are downscaled
    batch_size: int = 4  # lama / diffusion: regions of one size filled per model call
    steps: int = 20  # diffusion: denoising steps
    work_side: int = 0  # diffusion: longer side of the work region (0 = the model's native)
    # diffusion: training image i (its source index) uses seed + i, so a result depends
    # neither on batching nor on which other images have something to remove
    seed: int = 0
    guidance: float = 7.5  # diffusion: classifier-free guidance scale
    prompt: str = ""  # diffusion: what to paint instead ("" = `NEUTRAL_PROMPT`)
    negative: str = ""  # diffusion: added to each image's removed concepts in the negative

    def __post_init__(self) -> None:
        if self.method not in CLASSICAL_METHODS:
            raise InputError(f"Classical inpainting method '{self.method}' is not one of "
                             f"{', '.join(CLASSICAL_METHODS)}.")
        checks = {"radius": self.radius >= 1, "context": self.context >= 0,
                  "min_context_px": self.min_context_px >= 0, "max_side": self.max_side >= 64,
                  "batch_size": self.batch_size >= 1, "steps": self.steps >= 1,
                  "work_side": self.work_side == 0 or self.work_side >= 64}
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise InputError(f"Inpaint setting(s) out of range: "
                             f"{', '.join(f'{n}={getattr(self, n)}' for n in bad)} (radius, "
                             "batch_size and steps >= 1, max_side >= 64, work_side 0 or >= 64, "
                             "the rest >= 0).")


@dataclass(frozen=True)
class Region:
    box: Box  # the source pixels cut out
    fit: tuple[int, int]  # (w, h) the cut is resized to (== box size when not rescaled)
    work: tuple[int, int]  # (w, h) handed to the backend: ``fit`` padded at the right/bottom


@dataclass
class Crop:
    """One region as a backend receives it."""

    image: np.ndarray  # work_h x work_w x 3 uint8 RGB
    mask: np.ndarray  # work_h x work_w bool, True = fill (padding is never True)
    negative: str = ""  # what was removed here (the diffusion backend steers away from it)
    seed: int = 0  # per-image seed (diffusion)


@dataclass(frozen=True)
class Backend:
    """An inpainting method, as registered in ``inpaint.BACKENDS``."""

    name: str  # registry key and node combo value
    title: str  # for messages and summaries
    needs: str | None  # the model it needs: None, "inpainter" (LaMa) or "base_model"
    # region(mask_box, image_size, settings, model) -> where and at what size to work
    region: Callable[[Box, tuple[int, int], InpaintSettings, Any], Region]
    # fill(crops of one work size, settings, model) -> filled images (work size, uint8 RGB)
    fill: Callable[[list[Crop], InpaintSettings, Any], list[np.ndarray]]
    batched: bool  # whether fill takes several crops per call (else one at a time)
    check: Callable[[Any], None] | None = None  # raise InputError for a wrong model object


def mask_box(mask: np.ndarray) -> Box | None:
    """The bounding box of ``mask``'s True pixels, or None if there are none."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not rows.size:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def learned_context(box: Box, settings: InpaintSettings) -> int:
    """Context (px per side) the learned backends see around a mask with bounding ``box``."""
    longer = max(box[2] - box[0], box[3] - box[1])
    return max(settings.min_context_px, round(settings.context * longer))


def context_size(box: Box, image_size: tuple[int, int], context: int) -> tuple[int, int]:
    """(w, h) of ``box`` with ``context`` px on each side, clipped to the image."""
    return (min(image_size[0], box[2] + context) - max(0, box[0] - context),
            min(image_size[1], box[3] + context) - max(0, box[1] - context))


def learned_region(box: Box, image_size: tuple[int, int], settings: InpaintSettings, side: int,
                   multiple: int, minimum: int, upscale: bool) -> Region:
    """The region a learned backend (LaMa, diffusion) works on: ``box`` plus `learned_context`,
    scaled so its longer side is ``side`` px (only ever downscaled unless ``upscale``), in sizes
    that are multiples of ``multiple`` and at least ``minimum``."""
    context = learned_context(box, settings)
    scale = side / max(context_size(box, image_size, context))
    return plan_region(box, image_size, context, scale if upscale else min(1.0, scale),
                       multiple, minimum)


def plan_region(box: Box, image_size: tuple[int, int], context: int, scale: float,
                multiple: int, minimum: int = 1) -> Region:
    """The region around ``box`` with ``context`` px on each side, to be worked on at
    ``scale`` (work px per source px) in sizes that are multiples of ``multiple`` and at least
    ``minimum``.

    The region is grown into real image pixels until its scaled size reaches the next multiple,
    shifted to stay inside the image; only an image smaller than that is padded.
    """
    width, height = image_size
    x0, y0 = max(0, box[0] - context), max(0, box[1] - context)
    x1, y1 = min(width, box[2] + context), min(height, box[3] + context)
    work_w = _ceil_to(max(minimum, round((x1 - x0) * scale)), multiple)
    work_h = _ceil_to(max(minimum, round((y1 - y0) * scale)), multiple)
    x0, x1 = _grow(x0, x1, min(width, max(x1 - x0, round(work_w / scale))), width)
    y0, y1 = _grow(y0, y1, min(height, max(y1 - y0, round(work_h / scale))), height)
    fit = (min(work_w, max(1, round((x1 - x0) * scale))),
           min(work_h, max(1, round((y1 - y0) * scale))))
    if scale == 1:  # no resampling at all: the cut is the region's own pixels
        fit = (x1 - x0, y1 - y0)
    return Region((x0, y0, x1, y1), fit, (work_w, work_h))


def cut(image: np.ndarray, mask: np.ndarray, region: Region) -> tuple[np.ndarray, np.ndarray]:
    """The region of ``image`` (H x W x 3 uint8) and ``mask`` at the work size: resized to
    ``fit`` (the mask conservatively: any covered part of a pixel counts), then padded by
    mirroring (image) and with False (mask)."""
    x0, y0, x1, y1 = region.box
    pixels, hole = image[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    if region.fit != (x1 - x0, y1 - y0):
        pixels = np.asarray(Image.fromarray(pixels).resize(region.fit, Image.Resampling.LANCZOS))
        weight = Image.fromarray(hole.astype(np.uint8) * 255).resize(
            region.fit, Image.Resampling.BILINEAR)
        hole = np.asarray(weight) > 0
    pad_w, pad_h = region.work[0] - region.fit[0], region.work[1] - region.fit[1]
    if pad_w or pad_h:
        mode = "symmetric" if pad_w <= pixels.shape[1] and pad_h <= pixels.shape[0] else "edge"
        pixels = np.pad(pixels, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)
        hole = np.pad(hole, ((0, pad_h), (0, pad_w)), constant_values=False)
    return np.ascontiguousarray(pixels), hole


def paste(image: np.ndarray, mask: np.ndarray, region: Region, filled: np.ndarray) -> np.ndarray:
    """A copy of ``image`` whose masked pixels inside ``region`` come from ``filled`` (the
    backend's work-size output); every other pixel is ``image``'s own."""
    if filled.shape[:2] != (region.work[1], region.work[0]):
        raise InputError(f"Inpainting returned {filled.shape[1]}x{filled.shape[0]} for a "
                         f"{region.work[0]}x{region.work[1]} region.")
    x0, y0, x1, y1 = region.box
    filled = filled[:region.fit[1], :region.fit[0]]
    if region.fit != (x1 - x0, y1 - y0):
        filled = np.asarray(Image.fromarray(filled).resize((x1 - x0, y1 - y0),
                                                           Image.Resampling.LANCZOS))
    out = image.copy()
    hole = mask[y0:y1, x0:x1]
    out[y0:y1, x0:x1][hole] = filled[hole]
    return out


def _ceil_to(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def _grow(a: int, b: int, need: int, limit: int) -> tuple[int, int]:
    """Widen [a, b) to ``need`` pixels around its centre, shifted to stay within [0, limit)."""
    extra = need - (b - a)
    if extra <= 0:
        return a, b
    a -= extra // 2
    b = a + need
    if a < 0:
        a, b = 0, b - a
    if b > limit:
        a, b = max(0, a - (b - limit)), limit
    return a, b
