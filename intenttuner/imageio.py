"""Turn whatever image a user hands us into the layouts models and ComfyUI take.

* `to_rgb_float`: HxWx3 float32 RGB in [0, 1], at the source's full precision (ComfyUI's IMAGE
  convention; `pils_to_batch` stacks these into an IMAGE batch).
* `to_rgb_array` / `to_rgb_pil`: HxWx3 uint8 RGB, what the model wrappers (SAM, open_clip, BLIP,
  GroundingDINO) call first.
* `open_image`: read an image file upright (EXIF orientation applied) without losing bit depth.

Rules, applied the same way to PIL images and numpy arrays:

- The scale follows the dtype and PIL mode, never the pixel values, so a dark image stays dark:
  8-bit data (PIL ``1``, ``L``, ``P``, ``RGB``, ``RGBA``, ``LA``, ``CMYK``, ...; numpy uint8):
  255 is white. 16-bit data (PIL ``I;16``, ``I;16L``, ``I;16B``, ``I;16N``; numpy uint16 in either
  byte order): 65535 is white. PIL ``I`` (32-bit int) is read as 16-bit, which is what it holds
  when Pillow opens 16-bit PNGs and TIFFs; values outside 0..65535 are refused. Floats (PIL ``F``,
  numpy float): [0, 1]; overshoot of up to `FLOAT_SLACK` (from resampling) is clipped, more is
  refused, as is NaN. numpy bool: True is white. Other integer dtypes (e.g. int64 from
  ``np.array`` of Python ints) say nothing about their scale and are refused.
- Transparency (RGBA, LA, PA, premultiplied RGBa/La, a ``transparency`` key on P/L/RGB/16-bit
  images) is composited over ``background`` (white by default), not dropped: dropping alpha
  shows whatever colour the transparent pixels happen to store, often black.
- Numpy layouts: HxW (grey), HxWx1, HxWx2 (grey + alpha), HxWx3 (RGB), HxWx4 (RGBA).
  Channels-first arrays are not guessed at; they are rejected with their shape.
"""

from __future__ import annotations

import io
import logging
import os
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from .errors import InputError

log = logging.getLogger(__name__)

WHITE = (255, 255, 255)
# How far outside [0, 1] a float image may go and still be clipped rather than refused: bicubic
# and Lanczos resampling overshoot edges by a few percent; a 0-255 float image is far beyond.
FLOAT_SLACK = 0.05

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

ImageLike = Image.Image | np.ndarray


# --- public API ---------------------------------------------------------------------------------


def to_rgb_float(image: ImageLike, background: tuple[int, int, int] = WHITE) -> np.ndarray:
    """Return ``image`` as a C-contiguous HxWx3 float32 RGB array in [0, 1] (module docstring)."""
    data, white = _channels(image)
    values = _normalise(data, white)
    colour = values[:, :, :1].repeat(3, axis=2) if values.shape[2] in (1, 2) else values[:, :, :3]
    if values.shape[2] in (2, 4):
        alpha = values[:, :, -1:]
        bg = np.asarray(background, dtype=np.float32) / 255.0
        colour = colour * alpha + bg * (1.0 - alpha)
    return np.ascontiguousarray(colour, dtype=np.float32)


def to_rgb_array(image: ImageLike, background: tuple[int, int, int] = WHITE) -> np.ndarray:
    """Return ``image`` as a C-contiguous HxWx3 uint8 RGB array (see the module docstring)."""
    data, white = _channels(image)
    if data.dtype == np.uint8 and white == 255 and data.shape[2] in (1, 3):  # exact as it is
        return np.ascontiguousarray(data.repeat(3, axis=2) if data.shape[2] == 1 else data)
    return np.rint(to_rgb_float(image, background) * 255.0).astype(np.uint8)


def to_rgb_pil(image: ImageLike, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """Return ``image`` as a PIL ``RGB`` image (unchanged if it already is one)."""
    if isinstance(image, Image.Image) and image.mode == "RGB":
        return image
    return Image.fromarray(to_rgb_array(image, background), mode="RGB")


def open_image(source: str | os.PathLike | BinaryIO) -> ImageLike:
    """Read an image file upright, at its own bit depth.

    ``source``: a path or a binary file object. The EXIF orientation (how the camera was held)
    is applied, so the image is the way every viewer shows it. Returns a PIL image in the file's
    own mode (``I;16`` for 16-bit greyscale PNG/TIFF, ``RGBA`` for a transparent PNG, ...), or,
    for a 16-bit colour PNG, which PIL can only read as 8-bit, an HxWx3 (RGB) or HxWx4 (RGBA)
    uint16 array read with OpenCV. Every function here accepts both.
    """
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the image file"
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            data = f.read()
    else:
        data = source.read()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
            if is_16_bit_colour_png(data):
                deep = _read_16_bit_png(data)
                if deep is not None:
                    return _orient(deep, orientation)
            return ImageOps.exif_transpose(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name} is not an image this pack can read ({exc}). Save it as a PNG "
                         "or JPEG and try again.") from None


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


def batches_to_pils(batches) -> list[Image.Image]:
    """A list of IMAGE batches (what a node with ``INPUT_IS_LIST`` gets: images of different
    sizes, each item itself a batch) flattened into RGB PIL images, in order."""
    return [pil for batch in batches for pil in batch_to_pils(batch)]


def pils_to_batch(images: list[ImageLike]):
    """Same-size images (PIL or numpy, any mode) as a ComfyUI IMAGE batch: float32 tensor
    B x H x W x 3 in [0, 1], at full precision (16-bit sources keep their 16 bits)."""
    import torch

    arrays = [to_rgb_float(image) for image in images]
    sizes = {a.shape for a in arrays}
    if len(sizes) != 1:
        raise InputError(f"Images of different sizes cannot form one batch: {sorted(sizes)}.")
    return torch.from_numpy(np.stack(arrays))


# --- decoding: (HxWxC array, the value that means full intensity) --------------------------------


def _channels(image: ImageLike) -> tuple[np.ndarray, float]:
    """``image`` as HxWxC (C: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA) and its white value."""
    if isinstance(image, Image.Image):
        if 0 in image.size:
            raise InputError(f"The image is empty ({image.size[0]}x{image.size[1]} pixels).")
        return _pil_channels(image)
    if isinstance(image, np.ndarray):
        return _array_channels(image)
    raise InputError(f"Expected a PIL image or a numpy array, got {type(image).__name__}.")


def _pil_channels(image: Image.Image) -> tuple[np.ndarray, float]:
    mode = image.mode
    if mode == "RGB":
        return np.asarray(image), 255.0
    if mode == "L" and "transparency" not in image.info:
        return np.asarray(image)[:, :, None], 255.0
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        grey = np.asarray(image)
        if mode == "I" and grey.size and (grey.min() < 0 or grey.max() > 65535):
            raise InputError(
                f"PIL mode 'I' images are read as 16-bit (0 to 65535), but this one holds "
                f"{grey.min()} to {grey.max()}. Convert it to 16-bit ('I;16') or 8-bit first."
            )
        key = image.info.get("transparency")
        if isinstance(key, int):  # a 16-bit PNG's tRNS: one grey value is transparent
            alpha = np.where(grey == key, 0, 65535)
            return np.dstack([grey, alpha]).astype(np.uint16), 65535.0
        return grey[:, :, None], 65535.0
    if mode == "F":
        return np.asarray(image)[:, :, None], 1.0
    try:
        if mode in _ALPHA_MODES or "transparency" in image.info:
            return np.asarray(image.convert("RGBA")), 255.0
        return np.asarray(image.convert("RGB")), 255.0  # 1, P, CMYK, YCbCr, LAB, HSV, RGBX, ...
    except (ValueError, OSError) as exc:
        raise InputError(
            f"Cannot convert an image of PIL mode '{mode}' ({image.size[0]}x{image.size[1]}) "
            f"to RGB ({exc}). Save it as an RGB or RGBA PNG/JPEG and try again."
        ) from None


def _array_channels(array: np.ndarray) -> tuple[np.ndarray, float]:
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4) or 0 in array.shape[:2]:
        raise InputError(
            f"Expected an image array of shape HxW, HxWx1, HxWx2, HxWx3 or HxWx4, got shape "
            f"{tuple(array.shape)}. Channels-first (CxHxW) arrays must be transposed first."
        )
    if array.dtype == np.uint8:
        return array, 255.0
    if array.dtype.kind == "u" and array.dtype.itemsize == 2:  # uint16, either byte order
        return array, 65535.0
    if array.dtype == np.bool_:
        return array.astype(np.uint8), 1.0
    if np.issubdtype(array.dtype, np.floating):
        return array, 1.0
    if np.issubdtype(array.dtype, np.integer):
        raise InputError(
            f"Image arrays of dtype {array.dtype} do not say their scale. Cast to uint8 (0-255) "
            "or uint16 (0-65535), or pass floats in [0, 1]."
        )
    raise InputError(f"Image arrays must hold numbers, got dtype {array.dtype}.")


def _normalise(data: np.ndarray, white: float) -> np.ndarray:
    """``data / white`` as float32 in [0, 1]; floats are checked against [0, 1] first."""
    values = data.astype(np.float32)
    if white == 1.0 and np.issubdtype(data.dtype, np.floating):
        if not np.isfinite(values).all():
            raise InputError("The image holds NaN or infinite values; replace them first "
                             "(e.g. numpy.nan_to_num).")
        low, high = float(values.min()), float(values.max())
        if low < -FLOAT_SLACK or high > 1.0 + FLOAT_SLACK:
            raise InputError(
                f"Float images must hold values in [0, 1] (ComfyUI's IMAGE convention); this one "
                f"goes from {low:g} to {high:g}. Rescale it first (0-255 floats: divide by 255)."
            )
        return np.clip(values, 0.0, 1.0)
    return values / np.float32(white)


# --- files: orientation and 16-bit colour PNGs ---------------------------------------------------


def is_16_bit_colour_png(data: bytes) -> bool:
    """True for a PNG whose IHDR says 16 bits per sample, colour type RGB (2) or RGBA (6).
    ``data``: the file's bytes (its first 26 are enough). PIL reads such files as 8-bit;
    `open_image` keeps all 16 bits."""
    return (data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) > 25
            and data[24] == 16 and data[25] in (2, 6))


def _read_16_bit_png(data: bytes) -> np.ndarray | None:
    """The PNG in ``data`` as uint16 RGB(A), or None (PIL's 8-bit reading is used) when OpenCV
    is missing or cannot decode it."""
    try:
        import cv2
    except ImportError:
        log.warning("OpenCV (opencv-python-headless) is not installed: reading a 16-bit colour "
                    "PNG as 8-bit")
        return None
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None or array.dtype != np.uint16 or array.ndim != 3:
        log.warning("OpenCV could not read a 16-bit colour PNG; reading it as 8-bit")
        return None
    code = cv2.COLOR_BGRA2RGBA if array.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(array, code)


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF ``orientation`` (1-8) to an HxWxC array as `ImageOps.exif_transpose` does to
    PIL images: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise, 7
    transverse, 8 rotate 90 counter-clockwise."""
    steps = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    step = steps.get(orientation)
    return np.ascontiguousarray(step(array)) if step else array
