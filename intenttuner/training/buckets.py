"""Aspect-ratio buckets: which (width, height) each training image is trained at, and the
image itself, resized and cropped to it.

Buckets are kohya sd-scripts' (``make_bucket_resolutions``): sides are multiples of 64 (the
latents are 1/8 of the image and the UNet halves them three times), the area is at most
``resolution**2``, and the sides run from ``resolution / 2`` to ``2 * resolution``. Those bounds
are kohya's defaults (``min_bucket_reso=256``, ``max_bucket_reso=1024`` at 512 px) scaled with
the resolution, so SDXL at 1024 px gets 512..2048, what SDXL trainers use. Each image goes to
the bucket whose aspect ratio is closest (compared as log ratios, so 2:1 and 1:2 are equally
far from square), is scaled to cover it and centre-cropped; the crop's offset and the image's
original size are SDXL's micro-conditioning ("time ids").

Images smaller than their bucket are refused unless ``upscale_small_images`` is on: a LoRA
trained on upscaled images learns their blur.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import ExifTags, Image

from ..dataset.folders import some_of
from ..errors import InputError
from ..imageio import open_image, to_rgb_float
from .config import RESOLUTION_STEP, TrainConfig

Size = tuple[int, int]
LISTED = 10  # images named in an error; the rest are counted
# EXIF orientations that turn the picture by 90 degrees (width and height swap when upright).
_QUARTER_TURNS = {5, 6, 7, 8}


def bucket_sizes(resolution: int, step: int = RESOLUTION_STEP) -> list[Size]:
    """kohya-style (w, h) buckets for ``resolution`` (see the module docstring), sorted."""
    if resolution < step or resolution % step:
        raise InputError(f"resolution {resolution} cannot be bucketed: use a multiple of {step} "
                         f"(at least {step}).")
    area = resolution * resolution
    min_side = max(step, resolution // 2 // step * step)
    max_side = 2 * resolution
    sizes = {(resolution, resolution)}
    for width in range(min_side, max_side + 1, step):
        height = min(max_side, area // width // step * step)
        if height >= min_side:
            sizes.update({(width, height), (height, width)})
    return sorted(sizes)


def closest_bucket(size: Size, buckets: list[Size]) -> Size:
    """The bucket whose aspect ratio is nearest ``size``'s (w, h); ties go to the larger one."""
    ratio = math.log(size[0] / size[1])
    return min(buckets, key=lambda b: (abs(math.log(b[0] / b[1]) - ratio), -b[0] * b[1], b))


def target_sizes(sizes: list[Size], resolution: int, buckets: bool) -> list[Size]:
    """The (w, h) each image of (upright) ``sizes`` trains at: its closest bucket, or the
    (resolution, resolution) square when buckets are off."""
    if not buckets:
        return [(resolution, resolution)] * len(sizes)
    choices = bucket_sizes(resolution)
    return [closest_bucket(size, choices) for size in sizes]


def assign_buckets(training_set, config: TrainConfig, kind: str) -> list[Size]:
    """One (w, h) per item of ``training_set``, in order (see the module docstring).

    Raises one `InputError` listing every unreadable image, and one listing every image
    smaller than its bucket (unless ``config.upscale_small_images``), with a resolution at
    which they would all fit."""
    return [bucket for _, bucket in plan_buckets(training_set, config, kind)]


def plan_buckets(training_set, config: TrainConfig, kind: str) -> list[tuple[Size, Size]]:
    """(upright image size, bucket), both (w, h), per item: `assign_buckets` with the sizes
    it read, so callers need not open the headers again."""
    resolution = config.resolution_for(kind)
    sizes = item_sizes(training_set)
    targets = target_sizes(sizes, resolution, config.buckets)
    if config.upscale_small_images:
        return list(zip(sizes, targets, strict=True))
    small = [i for i, (size, target) in enumerate(zip(sizes, targets, strict=True))
             if too_small(size, target)]
    if small:
        names = [f"{training_set.items[i].image} ({sizes[i][0]}x{sizes[i][1]} < "
                 f"{targets[i][0]}x{targets[i][1]})" for i in small]
        fits = fitting_resolution([sizes[i] for i in small], resolution, config.buckets)
        advice = (f"lower resolution to {fits} or turn on upscale_small_images" if fits else
                  "turn on upscale_small_images (they are smaller than the smallest bucket, "
                  f"{RESOLUTION_STEP} px) or remove them")
        raise InputError(
            f"{len(small)} training image(s) are smaller than the {resolution} px "
            f"{'bucket' if config.buckets else 'square crop'} they train at: "
            f"{some_of(names, LISTED)}; {advice} (a LoRA trained on upscaled images learns "
            "their blur).")
    return list(zip(sizes, targets, strict=True))


def too_small(size: Size, target: Size) -> bool:
    """True when covering ``target`` would upscale an image of ``size`` (either side short)."""
    return size[0] < target[0] or size[1] < target[1]


def fitting_resolution(sizes: list[Size], resolution: int, buckets: bool) -> int | None:
    """The largest resolution below ``resolution`` at which no image of ``sizes`` is upscaled,
    or None when even the smallest one does not fit."""
    for candidate in range(resolution - RESOLUTION_STEP, RESOLUTION_STEP - 1, -RESOLUTION_STEP):
        targets = target_sizes(sizes, candidate, buckets)
        if not any(too_small(s, t) for s, t in zip(sizes, targets, strict=True)):
            return candidate
    return None


def item_sizes(training_set) -> list[Size]:
    """Upright (w, h) of every item's image, from the file headers (EXIF orientation applied,
    as `imageio.open_image` applies it; the manifest's ``size`` is the raw header's)."""
    sizes, unreadable = [], []
    for item in training_set.items:
        try:
            sizes.append(upright_size(training_set.image_path(item)))
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            unreadable.append(f"{item.image} ({exc})")
    if unreadable:
        raise InputError(f"{len(unreadable)} training image(s) cannot be read: "
                         f"{some_of(unreadable, LISTED)}. Replace or remove them, then load the "
                         "training set again.")
    return sizes


def upright_size(path: Path) -> Size:
    """(w, h) of the image at ``path`` as viewers show it, read from its header only."""
    with Image.open(path) as image:
        width, height = image.size
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    return (height, width) if orientation in _QUARTER_TURNS else (width, height)


def cover_crop(size: Size, bucket: Size) -> tuple[Size, tuple[int, int]]:
    """How an image of (w, h) ``size`` fills ``bucket``: the (w, h) it is scaled to (the
    smallest that covers the bucket, aspect kept) and the centre crop's (top, left) in it."""
    scale = max(bucket[0] / size[0], bucket[1] / size[1])
    width = max(bucket[0], round(size[0] * scale))
    height = max(bucket[1], round(size[1] * scale))
    return (width, height), ((height - bucket[1]) // 2, (width - bucket[0]) // 2)


def load_for_bucket(path: Path, bucket: Size) -> tuple[torch.Tensor, Size, tuple[int, int]]:
    """The image at ``path`` as a [3, h, w] float tensor in [-1, 1] filling (w, h) ``bucket``
    (scaled to cover, centre-cropped), its original (h, w) and the crop's (top, left).

    Any mode loads as RGB (transparency over white, greyscale repeated, 16-bit kept at full
    precision until the end) through `imageio`; resampling is bicubic with antialiasing, in
    float, so downscaling does not alias and 16-bit sources keep their depth."""
    pixels = to_rgb_float(open_image(path))  # H x W x 3 in [0, 1]
    height, width = pixels.shape[:2]
    (new_w, new_h), (top, left) = cover_crop((width, height), bucket)
    image = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None]
    if (new_w, new_h) != (width, height):
        image = torch.nn.functional.interpolate(image, size=(new_h, new_w), mode="bicubic",
                                                antialias=True, align_corners=False)
    image = image[0, :, top:top + bucket[1], left:left + bucket[0]].clamp(0.0, 1.0)
    return image * 2.0 - 1.0, (height, width), (top, left)
