"""Reference boxes: parse what the user drew or typed, check it against the images, crop once.

Boxes are numbered ``[1]``, ``[2]``... in the order given, across all reference images; that
number is what descriptions refer to. Accepted JSON (the box editor in ``web/`` writes the first):

- ``[{"image": 0, "box": [x1, y1, x2, y2], "label": "leather jacket"}, ...]``
- ``[[[x1, y1, x2, y2], ...], [[x1, y1, x2, y2]]]`` — one list of boxes per image
- ``[[x1, y1, x2, y2], ...]`` — all on the first image

Coordinates are XYXY in pixels of the reference image (``image`` is 0-based).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from ..errors import InputError
from ..imageio import to_rgb_pil
from .schema import ReferenceBox, parse_json

CROP_MAX_SIDE = 384  # crops travel inside the intent JSON; enough for embedding models (224-336)
MIN_BOX_SIDE = 2  # pixels; anything thinner is a slip of the mouse, not a concept
EDGE_TOLERANCE = 1.0  # pixels a drawn box may overshoot the image edge (clamped, not refused)


@dataclass(frozen=True)
class DrawnBox:
    image: int
    box: tuple[float, float, float, float]
    label: str = ""


def parse_boxes(text: str) -> list[DrawnBox]:
    """Parse the boxes JSON (see the module docstring); empty text means no boxes."""
    if not text or not text.strip():
        return []
    data = parse_json(text, "reference_boxes", list,
                      '[{"image": 0, "box": [10, 20, 200, 240], "label": "jacket"}]')
    if all(_is_box(item) for item in data):
        return [DrawnBox(0, _as_box(item, i + 1)) for i, item in enumerate(data)]
    if all(isinstance(item, list) and all(_is_box(b) for b in item) for item in data):
        flat = [(image, b) for image, boxes in enumerate(data) for b in boxes]
        return [DrawnBox(image, _as_box(b, i + 1)) for i, (image, b) in enumerate(flat)]
    return [_parse_object(item, i + 1) for i, item in enumerate(data)]


def build_references(images: Sequence[Image.Image], boxes: Sequence[DrawnBox]
                     ) -> list[ReferenceBox]:
    """Check every box against its image and compute its crop; returns boxes numbered 1..n."""
    references = []
    for n, drawn in enumerate(boxes, start=1):
        if not 0 <= drawn.image < len(images):
            raise InputError(
                f"box [{n}] is drawn on reference image {drawn.image + 1}, but "
                + (f"only {len(images)} reference image(s) are connected."
                   if images else "no reference images are connected."))
        image = to_rgb_pil(images[drawn.image])
        box = _checked_box(drawn.box, image.size, n)
        references.append(ReferenceBox(index=n, image=drawn.image, box=box,
                                       image_size=image.size, label=drawn.label,
                                       crop_png=encode_crop(image, box)))
    return references


def encode_crop(image: Image.Image, box: tuple[float, float, float, float]) -> str:
    crop = image.crop(tuple(round(v) for v in box))
    crop.thumbnail((CROP_MAX_SIDE, CROP_MAX_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    crop.save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _checked_box(box: tuple[float, float, float, float], size: tuple[int, int], n: int
                 ) -> tuple[float, float, float, float]:
    width, height = size
    x1, y1, x2, y2 = box
    where = f"box [{n}] ({x1:g}, {y1:g}, {x2:g}, {y2:g}) on a {width}x{height} image"
    if x2 < x1 or y2 < y1:
        raise InputError(f"{where} has its corners swapped: use [x1, y1, x2, y2] with x1 < x2 "
                         "and y1 < y2 (top-left, then bottom-right).")
    t = EDGE_TOLERANCE
    if x1 < -t or y1 < -t or x2 > width + t or y2 > height + t:
        raise InputError(f"{where} lies (partly) outside the image. Coordinates are pixels of "
                         "that reference image; redraw the box inside it.")
    x1, y1 = max(0.0, x1), max(0.0, y1)
    x2, y2 = min(float(width), x2), min(float(height), y2)
    if x2 - x1 < MIN_BOX_SIDE or y2 - y1 < MIN_BOX_SIDE:
        raise InputError(f"{where} has (almost) zero area; draw a box around the concept.")
    return (x1, y1, x2, y2)


def _parse_object(item: object, n: int) -> DrawnBox:
    if not isinstance(item, dict) or "box" not in item:
        raise InputError(f"reference box [{n}] must be an object like "
                         f'{{"image": 0, "box": [x1, y1, x2, y2]}}, got {json.dumps(item)[:80]}')
    image = item.get("image", 0)
    if not isinstance(image, int) or isinstance(image, bool) or image < 0:
        raise InputError(f"reference box [{n}]: 'image' must be a 0-based image index, "
                         f"got {image!r}")
    label = item.get("label", "")
    return DrawnBox(image, _as_box(item["box"], n), str(label) if label else "")


def _is_box(item: object) -> bool:
    return (isinstance(item, list) and len(item) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in item))


def _as_box(item: object, n: int) -> tuple[float, float, float, float]:
    if not _is_box(item):
        raise InputError(f"reference box [{n}] must be four numbers [x1, y1, x2, y2], "
                         f"got {json.dumps(item)[:80]}")
    x1, y1, x2, y2 = (float(v) for v in item)  # type: ignore[union-attr]
    return (x1, y1, x2, y2)
