"""Previews of detections: each image with its labelled boxes (and masks), and a text summary.

Kept boxes are drawn solid in their concept's colour with score (and similarity, once
filtered); boxes a filter dropped are drawn thin and red with their similarity, so the user can
tune thresholds by eye. Images are downscaled to ``max_side`` for display only.
"""

from __future__ import annotations

import zlib

import numpy as np
from PIL import Image, ImageDraw

from ..drawing import font as load_font
from ..imageio import to_rgb_pil
from .detect import concept_counts
from .types import Detection, Detections

PALETTE = [(255, 166, 35), (74, 144, 226), (126, 211, 33), (189, 16, 224), (80, 227, 194),
           (248, 231, 28), (245, 110, 160), (150, 120, 255)]
DROPPED = (230, 40, 40)


def colour_of(concept: str) -> tuple[int, int, int]:
    """A stable colour per concept name (same in every image and node)."""
    return PALETTE[zlib.crc32(concept.encode()) % len(PALETTE)]


def render_image(image: Image.Image, detections: list[Detection],
                 max_side: int = 768) -> Image.Image:
    """``image`` (any mode; see `intenttuner.imageio`) with ``detections`` drawn on it,
    downscaled so its longest side <= max_side."""
    scale = min(1.0, max_side / max(image.size))
    canvas = to_rgb_pil(image).resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
        Image.Resampling.BILINEAR)
    _overlay_masks(canvas, image.size, detections, scale)
    draw = ImageDraw.Draw(canvas)
    font = load_font(13)
    # dropped first, so kept boxes are drawn on top of them
    for d in sorted(detections, key=lambda d: d.kept):
        box = [v * scale for v in d.box]
        colour = colour_of(d.concept) if d.kept else DROPPED
        draw.rectangle(box, outline=colour, width=3 if d.kept else 1)
        label = _label(d)
        left, top = box[0], max(0, box[1] - 16)
        width = draw.textlength(label, font=font) + 6
        draw.rectangle((left, top, left + width, top + 16), fill=colour)
        draw.text((left + 3, top + 1), label, fill=(0, 0, 0), font=font)
    return canvas


def _label(d: Detection) -> str:
    text = d.value or d.concept
    text += f" {d.score:.2f}"
    if d.similarity is not None:
        text += f" sim {d.similarity:.2f}"
    return text if d.kept else f"✗ {text}"


def _overlay_masks(canvas: Image.Image, size: tuple[int, int], detections: list[Detection],
                   scale: float) -> None:
    pixels = np.asarray(canvas).astype(np.float32)
    painted = False
    for d in detections:
        if d.mask is None or not d.kept:
            continue
        mask = Image.fromarray(d.mask.decode(size)).resize(canvas.size, Image.Resampling.NEAREST)
        region = np.asarray(mask)
        pixels[region] = pixels[region] * 0.55 + np.array(colour_of(d.concept)) * 0.45
        painted = True
    if painted:
        canvas.paste(Image.fromarray(pixels.astype(np.uint8)))


def summary(detections: Detections) -> str:
    """Per concept: kept boxes and in how many images; then the warnings."""
    total = len(detections.images)
    lines = [f"{total} image(s); box threshold {detections.box_threshold:g}, text threshold "
             f"{detections.text_threshold:g}"]
    if detections.filter:
        f = detections.filter
        lines.append(f"Filtered by reference similarity >= {f['threshold']:g} "
                     f"({f['encoder']}" + (f", best {f['top_k']} per image)" if f["top_k"]
                                           else ")"))
    counts = concept_counts(detections)
    for names in detections.queries.values():
        for name in names:
            boxes, images = counts.pop(name, (0, 0))
            lines.append(f"{name}: {boxes} box(es) in {images}/{total} image(s)")
    dropped = sum(not d.kept for i in detections.images for d in i.detections)
    if dropped:
        lines.append(f"{dropped} box(es) dropped by the filter (red in the preview)")
    lines += [f"WARNING: {w}" for w in detections.warnings]
    return "\n".join(dict.fromkeys(lines))  # concepts sharing a phrase are listed once
