"""Turn whatever image a user hands us into the one layout models take: RGB, uint8, HxWx3.

Model wrappers (SAM, open_clip, BLIP) accept PIL images of any mode and numpy arrays of any
common layout, and call `to_rgb_array` / `to_rgb_pil` first, so RGBA cut-outs, greyscale scans,
palette GIFs and 16-bit PNGs all work and none of them silently turns white or black.

Rules, applied the same way to PIL images and numpy arrays:

- Transparency (RGBA, LA, PA, P/L/RGB with a transparency key, premultiplied RGBa/La) is
  composited over ``background`` (white by default), not dropped: dropping alpha shows whatever
  colour the transparent pixels happen to store, often black.
- 16-bit data (PIL ``I;16*``, numpy uint16) is scaled by 1/257 so 65535 maps to 255, rather than
  clipped at 255 as ``Image.convert("RGB")`` does.
- PIL ``I`` (32-bit int) and other integer arrays: values up to 255 are taken as 8-bit, larger
  values up to 65535 as 16-bit.
- Floats (PIL ``F``, numpy float): values up to 1.0 are taken as [0, 1] (ComfyUI's IMAGE
  convention), up to 255 as 8-bit, up to 65535 as 16-bit. NaN becomes 0.
- Numpy layouts: HxW (grey), HxWx1, HxWx2 (grey + alpha), HxWx3 (RGB), HxWx4 (RGBA).
  Channels-first arrays are not guessed at; they are rejected with their shape.
"""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image

from .errors import InputError

log = logging.getLogger(__name__)

WHITE = (255, 255, 255)

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_HIGH_DEPTH_MODES = {"I", "F", "I;16", "I;16L", "I;16B", "I;16N"}


def to_rgb_array(image: Image.Image | np.ndarray,
                 background: tuple[int, int, int] = WHITE) -> np.ndarray:
    """Return ``image`` as a C-contiguous HxWx3 uint8 RGB array (see the module docstring)."""
    if isinstance(image, Image.Image):
        if 0 in image.size:
            raise InputError(f"The image is empty ({image.size[0]}x{image.size[1]} pixels).")
        return _pil_to_rgb(image, background)
    if isinstance(image, np.ndarray):
        return _array_to_rgb(image, background)
    raise InputError(
        f"Expected a PIL image or a numpy array, got {type(image).__name__}."
    )


def to_rgb_pil(image: Image.Image | np.ndarray,
               background: tuple[int, int, int] = WHITE) -> Image.Image:
    """Return ``image`` as a PIL ``RGB`` image (unchanged if it already is one)."""
    if isinstance(image, Image.Image) and image.mode == "RGB":
        return image
    return Image.fromarray(to_rgb_array(image, background), mode="RGB")


def _pil_to_rgb(image: Image.Image, background: tuple[int, int, int]) -> np.ndarray:
    mode = image.mode
    if mode == "RGB":
        return np.ascontiguousarray(np.asarray(image))
    if mode in _HIGH_DEPTH_MODES:
        grey = _scale_to_uint8(np.asarray(image), sixteen_bit=mode.startswith("I;16"))
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    try:
        if mode in _ALPHA_MODES or "transparency" in image.info:
            rgba = np.asarray(image.convert("RGBA"))
            return _composite(rgba[:, :, :3], rgba[:, :, 3], background)
        return np.ascontiguousarray(np.asarray(image.convert("RGB")))
    except (ValueError, OSError) as exc:
        raise InputError(
            f"Cannot convert an image of PIL mode '{mode}' ({image.size[0]}x{image.size[1]}) "
            f"to RGB ({exc}). Save it as an RGB or RGBA PNG/JPEG and try again."
        ) from None


def _array_to_rgb(array: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4) or 0 in array.shape[:2]:
        raise InputError(
            f"Expected an image array of shape HxW, HxWx1, HxWx2, HxWx3 or HxWx4, got shape "
            f"{tuple(array.shape)}. Channels-first (CxHxW) arrays must be transposed first."
        )
    data = _scale_to_uint8(array)
    channels = data.shape[2]
    colour = data[:, :, :1].repeat(3, axis=2) if channels in (1, 2) else data[:, :, :3]
    if channels in (2, 4):
        return _composite(colour, data[:, :, -1], background)
    return np.ascontiguousarray(colour)


def _scale_to_uint8(array: np.ndarray, sixteen_bit: bool = False) -> np.ndarray:
    """Map ``array`` (any numeric dtype) to uint8 following the module docstring's rules."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise InputError(f"Image arrays must hold numbers, got dtype {array.dtype}.")
    values = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(values.max()) if values.size else 0.0
    if sixteen_bit or (array.dtype.kind == "u" and array.dtype.itemsize == 2):  # any byte order
        scale = 255.0 / 65535.0
    elif np.issubdtype(array.dtype, np.floating) and peak <= 1.0 + 1e-3:
        scale = 255.0
    elif peak <= 255.0:
        scale = 1.0
    elif peak <= 65535.0:
        scale = 255.0 / 65535.0
    else:
        raise InputError(
            f"Image values go up to {peak:g} ({array.dtype}); expected [0, 1] floats or "
            "8-/16-bit integers. Rescale the image before passing it in."
        )
    return np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)


def _composite(rgb: np.ndarray, alpha: np.ndarray,
               background: tuple[int, int, int]) -> np.ndarray:
    """Alpha-blend HxWx3 ``rgb`` over a flat ``background`` colour (straight alpha, uint8)."""
    a = alpha.astype(np.float32)[:, :, None] / 255.0
    bg = np.asarray(background, dtype=np.float32)[None, None, :]
    out = rgb.astype(np.float32) * a + bg * (1.0 - a)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def batch_to_pils(images) -> list[Image.Image]:
    """A ComfyUI IMAGE batch (torch tensor B x H x W x C, floats in [0, 1]; C = 1, 3 or 4) as a
    list of RGB PIL images. A single H x W x C image is accepted too."""
    array = images.detach().cpu().float().numpy() if hasattr(images, "detach") else images
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise InputError(f"Expected an IMAGE batch of shape (B, H, W, C), got {array.shape}.")
    return [to_rgb_pil(np.clip(frame, 0.0, 1.0)) for frame in array]


def pils_to_batch(images: list[Image.Image]):
    """Same-size PIL images as a ComfyUI IMAGE batch: float32 tensor B x H x W x 3 in [0, 1]."""
    import torch

    arrays = [to_rgb_array(image) for image in images]
    sizes = {a.shape for a in arrays}
    if len(sizes) != 1:
        raise InputError(f"Images of different sizes cannot form one batch: {sorted(sizes)}.")
    return torch.from_numpy(np.stack(arrays).astype(np.float32) / 255.0)
