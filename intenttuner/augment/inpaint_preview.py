"""IntentInpaint's before/after previews and its text summary.

One preview per source image: the image before and after, side by side, each half with the
inpainted region outlined (magenta), labelled with what was removed and the mask's share of the
image; an image whose mask is warned about (covering most of it) gets a red banner. Images are
downscaled for display only (``max_side`` per half).
"""

from __future__ import annotations

import textwrap

import numpy as np
from PIL import Image, ImageDraw

from ..drawing import font as load_font
from .outline import outlined
from .removal import Removal

OUTLINE = (255, 0, 255)
WARN = (220, 40, 40)
LABEL_H = 18


def previews(removal: Removal, max_side: int = 512) -> list[Image.Image]:
    """Before | after per source image, in order."""
    after = removal.augmented.sources
    out = []
    for image_mask, before, cleaned in zip(removal.masks.images, removal.before, after,
                                           strict=True):
        concepts = ", ".join(image_mask.concepts) or "nothing"
        label = f"removed: {concepts} ({image_mask.coverage:.1%} of the image)"
        # the summary has the full warning; the banner says what to look at
        warning = (f"{image_mask.coverage:.0%} of the image is painted over; see the summary"
                   if image_mask.warnings else None)
        out.append(before_after(before, cleaned, image_mask.mask, label, warning, max_side))
    return out


def before_after(before: Image.Image, after: Image.Image, mask: np.ndarray | None, label: str,
                 warning: str | None = None, max_side: int = 512) -> Image.Image:
    """``before`` and ``after`` side by side with ``mask`` outlined on both."""
    scale = min(1.0, max_side / max(before.size))
    size = (max(1, round(before.width * scale)), max(1, round(before.height * scale)))
    halves = [outlined(image.convert("RGB").resize(size, Image.Resampling.BILINEAR), mask,
                       OUTLINE) for image in (before, after)]
    gap = 6
    width = size[0] * 2 + gap
    text = "WARNING: " + warning if warning else label
    # wrapped to the canvas (about 6.5 px per character at 12 px), so narrow images keep it all
    lines = textwrap.wrap(text, max(12, int(width / 6.5))) or [""]
    canvas = Image.new("RGB", (width, size[1] + LABEL_H * (1 + len(lines))), (24, 24, 24))
    for k, half in enumerate(halves):
        canvas.paste(half, (k * (size[0] + gap), LABEL_H))
    draw = ImageDraw.Draw(canvas)
    font = load_font(12)
    draw.text((3, 2), "before", fill=(230, 230, 230), font=font)
    draw.text((size[0] + gap + 3, 2), "after", fill=(230, 230, 230), font=font)
    bottom = size[1] + LABEL_H
    if warning:
        draw.rectangle((0, bottom, canvas.width, canvas.height), fill=WARN)
    for k, line in enumerate(lines):
        draw.text((3, bottom + 2 + k * LABEL_H), line,
                  fill=(255, 255, 255) if warning else (230, 230, 230), font=font)
    return canvas


def summary(removal: Removal) -> str:
    """Backend and settings, then per image what was removed and the mask's coverage, with the
    overlap notes; then every warning."""
    settings = removal.augmented.inpaint or {}
    images = removal.masks.images
    cleaned = sum(1 for m in images if m.mask.any())
    head = f"IntentInpaint: {cleaned} of {len(images)} image(s) inpainted with {removal.backend}"
    if removal.choice:
        head += f" ({removal.choice})"
    lines = [head + f" in {removal.seconds:.1f} s",
             f"Mask dilation: {settings.get('dilate_px')} px + "
             f"{float(settings.get('dilate_frac', 0)):.0%} of each box's longer side"]
    for image_mask in images:
        if image_mask.mask.any():
            lines.append(f"{image_mask.name}: removed {', '.join(image_mask.concepts)}; mask "
                         f"{image_mask.coverage:.1%} of the image")
        else:
            lines.append(f"{image_mask.name}: nothing to remove")
        lines += [f"  - {note}" for note in image_mask.notes]
    lines += [f"WARNING: {w}" for w in removal.warnings()]
    return "\n".join(lines)
