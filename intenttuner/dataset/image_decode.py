"""Decoding one user image file safely: upright, RGB, within a stated size policy.

Policy (`DecodePolicy`; every refusal raises `SkipFile` with one of the `SKIP_KINDS`):

- Pixel limit: a header that claims more than ``max_pixels`` (default 100 megapixels, about
  300 MB decoded) is refused *before* decoding, as a possible decompression bomb. We check the
  header ourselves instead of relying on ``PIL.Image.MAX_IMAGE_PIXELS``, a process-wide setting
  ComfyUI and other packs may change; PIL's own DecompressionBombError (above twice its limit)
  is caught and reported the same way.
- Tiny images: a smaller side under ``min_side`` (64 px) is skipped. Below that a picture holds
  no detail a 512-1024 px model can learn (it is 8 latent pixels), and upscaling invents it.
- Aspect ratio: longer / shorter side above ``max_aspect`` (8) is skipped: trainers' aspect
  buckets end near 4:1, so such strips are squashed or cropped to a sliver anyway. Between 4:1
  and 8:1 images load (IntentCrop may still cut useful crops from a tall full-body shot).
- Large images: a longest side above ``max_side`` (2048; 0 keeps the full size) is downscaled
  with Lanczos, keeping the aspect ratio; never upscaled. JPEGs are decoded at 1/2, 1/4 or 1/8
  scale first (``Image.draft``, DCT scaling) when that still leaves at least the target size,
  so a 6000x6000 photo costs a fraction of its full decode.
- Conversion: EXIF orientation is applied; transparency (RGBA, LA, palette with a transparent
  index) is composited on white, as everywhere in the pack (`intenttuner.imageio`); CMYK,
  palette, greyscale and 16-bit images become 8-bit RGB scaled by their bit depth (65535 is
  white), so a dark 16-bit image stays dark. Animated GIF/WebP and multi-page TIFF: the first
  frame. HEIC/HEIF: read when the ``pillow-heif`` package is installed, else skipped with that
  hint (Pillow has no HEIC decoder of its own).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from ..errors import InputError
from ..imageio import is_16_bit_colour_png, open_image, to_rgb_pil

log = logging.getLogger(__name__)

# Why a file was skipped: short categories the report shows and tests assert.
NOT_AN_IMAGE = "not an image"
EMPTY = "empty file"
TRUNCATED = "truncated"
CORRUPT = "corrupt"
BOMB = "decompression bomb"
TOO_SMALL = "too small"
EXTREME_ASPECT = "extreme aspect ratio"
UNSUPPORTED = "unsupported format"
UNREADABLE = "unreadable"
DUPLICATE = "duplicate"
SKIP_KINDS = (NOT_AN_IMAGE, EMPTY, TRUNCATED, CORRUPT, BOMB, TOO_SMALL, EXTREME_ASPECT,
              UNSUPPORTED, UNREADABLE, DUPLICATE)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".bmp", ".dib",
                              ".tif", ".tiff", ".gif", ".avif", ".heic", ".heif"})
HEIF_EXTENSIONS = frozenset({".heic", ".heif"})
_SWAPS_SIDES = {5, 6, 7, 8}  # EXIF orientations that rotate by 90 degrees
# Formats Image.draft can DCT-scale: phone JPEGs with a depth map or preview (multi-picture
# format) open as MPO, and their first frame is a plain JPEG.
_DRAFT_FORMATS = frozenset({"JPEG", "MPO"})


@dataclass(frozen=True)
class DecodePolicy:
    """The size policy of the module docstring; node inputs map onto it."""

    max_side: int = 2048  # longest side after loading; larger images are downscaled. 0: no limit
    min_side: int = 64  # images whose smaller side is below this are skipped
    max_aspect: float = 8.0  # longer / shorter side above this is skipped
    max_pixels: int = 100_000_000  # header width x height above this is refused unread

    def __post_init__(self) -> None:
        if self.max_side != 0 and self.max_side < self.min_side:
            raise InputError(f"max_side {self.max_side} is below the {self.min_side} px minimum "
                             "image side; use 0 (no limit) or a larger value such as 2048.")
        if self.max_aspect < 1 or self.max_pixels < 1 or self.min_side < 1:
            raise InputError("max_aspect must be >= 1, and min_side and max_pixels positive.")


class SkipFile(Exception):
    """This file cannot be used; ``kind`` is one of `SKIP_KINDS`, ``detail`` says why."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


@dataclass
class Decoded:
    image: Image.Image  # RGB, upright, within the policy
    original_size: tuple[int, int]  # (width, height) upright, before any downscaling
    notes: list[str] = field(default_factory=list)  # conversions made ('RGBA on white', ...)


def decode_image(path: Path, policy: DecodePolicy) -> Decoded:
    """``path`` decoded to an upright RGB PIL image under ``policy``, or `SkipFile`."""
    if path.suffix.lower() in HEIF_EXTENSIONS:
        _enable_heif()
    # Pillow warns about damaged metadata ("Corrupt EXIF data") as it reads; those go to our
    # log with the file's name instead of the console without one.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decoded = _decode(path, policy)
    for warning in caught:
        log.debug("%s: %s", path.name, warning.message)
    return decoded


def _decode(path: Path, policy: DecodePolicy) -> Decoded:
    image = _open(path)
    with image:
        width, height = image.size
        _check_size(width, height, policy)
        orientation = _orientation(image)
        target = fit_size(width, height, policy.max_side)
        if can_draft(image) and target != (width, height):
            image.draft(None, target)  # DCT-domain downscale: decodes only what we keep
        _load(image)
        notes = _conversion_notes(image, orientation)
        if _is_16_bit_colour_file(path):  # Pillow reads these as 8-bit; imageio keeps 16
            pixels = open_image(path)
        else:
            pixels = ImageOps.exif_transpose(image)
        try:
            rgb = to_rgb_pil(pixels)
        except InputError as exc:
            raise SkipFile(UNSUPPORTED, str(exc)) from None
    if orientation in _SWAPS_SIDES:
        width, height = height, width
    target = fit_size(width, height, policy.max_side)
    if rgb.size != target:
        rgb = rgb.resize(target, Image.Resampling.LANCZOS)
    return Decoded(rgb, (width, height), notes)


def can_draft(image: Image.Image) -> bool:
    """True when ``image`` (opened, not loaded) is a JPEG, MPO included, that `Image.draft` can
    decode at 1/2, 1/4 or 1/8 scale."""
    return image.format in _DRAFT_FORMATS


def fit_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) scaled down so the longest side is ``max_side`` (0: unchanged)."""
    longest = max(width, height)
    if max_side == 0 or longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _open(path: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # We apply our own pixel limit (policy.max_pixels) right after opening.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise SkipFile(BOMB, f"refused unread ({exc})") from None
    except UnidentifiedImageError:
        if path.suffix.lower() in HEIF_EXTENSIONS:
            raise SkipFile(UNSUPPORTED, "HEIC/HEIF needs the pillow-heif package (pip install "
                                        "pillow-heif), or export the photo as JPEG") from None
        if path.suffix.lower() == ".avif":
            raise SkipFile(UNSUPPORTED, "this Pillow cannot read AVIF; export it as PNG or "
                                        "JPEG, or upgrade Pillow") from None
        raise SkipFile(NOT_AN_IMAGE, "its contents are no image format Pillow knows") from None
    except OSError as exc:  # with an errno: the file system's refusal; without: a bad header
        kind = UNREADABLE if exc.errno is not None else CORRUPT
        raise SkipFile(kind, exc.strerror or str(exc)) from None
    except (SyntaxError, ValueError, EOFError) as exc:  # Pillow's other header errors
        raise SkipFile(CORRUPT, str(exc) or type(exc).__name__) from None


def _check_size(width: int, height: int, policy: DecodePolicy) -> None:
    if width * height > policy.max_pixels:
        raise SkipFile(BOMB, f"its header claims {width}x{height} = {width * height / 1e6:.0f} "
                             f"megapixels, over the {policy.max_pixels / 1e6:.0f} MP limit; "
                             "refused unread (downscale it first if it is a real photo)")
    shorter, longer = min(width, height), max(width, height)
    if shorter < policy.min_side:
        raise SkipFile(TOO_SMALL, f"{width}x{height}; the smaller side must be at least "
                                  f"{policy.min_side} px")
    if longer / shorter > policy.max_aspect:
        raise SkipFile(EXTREME_ASPECT, f"{width}x{height} is {longer / shorter:.1f}:1; at most "
                                       f"{policy.max_aspect:g}:1 is used")


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # noqa: BLE001 - broken EXIF must not cost the picture; it stays unrotated
        log.debug("unreadable EXIF in %s", image.filename, exc_info=True)
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _load(image: Image.Image) -> None:
    try:
        image.load()
    except OSError as exc:
        kind = TRUNCATED if "truncated" in str(exc).lower() else CORRUPT
        raise SkipFile(kind, str(exc)) from None
    except (SyntaxError, ValueError, EOFError, MemoryError) as exc:  # Pillow's other decode errors
        raise SkipFile(CORRUPT, str(exc) or type(exc).__name__) from None


def _conversion_notes(image: Image.Image, orientation: int) -> list[str]:
    notes = []
    transparent = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if image.mode != "RGB" or transparent:
        notes.append(f"{image.mode} -> RGB" + (", transparency on white" if transparent else ""))
    if orientation != 1:
        notes.append(f"EXIF orientation {orientation} applied")
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        notes.append(f"first of {frames} frames")
    return notes


def _is_16_bit_colour_file(path: Path) -> bool:
    with open(path, "rb") as f:
        return is_16_bit_colour_png(f.read(26))


_heif_state: list[bool] = []  # [registered?] once tried


def _enable_heif() -> None:
    """Register pillow-heif's HEIC opener with Pillow if the package is installed (once)."""
    if _heif_state:
        return
    try:
        import pillow_heif
    except ImportError:
        _heif_state.append(False)
        return
    pillow_heif.register_heif_opener()
    _heif_state.append(True)
