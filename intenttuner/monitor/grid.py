"""The sample images of a sample point as one picture: a title, then a grid of thumbnails, each
with its caption (the prompt, what was measured) under it.

The look is the evaluation previews' (dark background, light text), so a sample point reads
like the Evaluation Report of the same images. Images of any sizes and modes: each is scaled
to fit a square cell, centred, never stretched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import Image, ImageDraw

from ..drawing import fit_text
from ..drawing import font as load_font
from ..errors import InputError
from ..imageio import to_rgb_pil
from ..intent.preview import BACKGROUND, PAD, TEXT

CELL = 256          # side of a thumbnail's square cell, pixels
THUMBNAIL = 384     # longest side of the thumbnails the live panel shows (`thumbnail`)
THUMBNAIL_PREFIX = "train"  # run R's thumbnails are saved as UI images "train/R" (ComfyUI: temp/)
LINE = 18           # height of a caption line, pixels
MAX_LINES = 4       # caption lines under a thumbnail; a longer caption ends with "…"
MAX_COLUMNS = 6
TITLE_HEIGHT = 36


def sample_grid(images: Sequence[Image.Image], captions: Sequence[str], title: str,
                columns: int | None = None) -> Image.Image:
    """``images`` in rows of ``columns`` (default: a near-square grid of at most 6 columns)
    under ``title``; ``captions[i]`` is wrapped under ``images[i]`` (``\\n`` starts a line)."""
    if len(images) != len(captions):
        raise InputError(f"sample_grid got {len(images)} image(s) but {len(captions)} "
                         "caption(s); give one caption per image.")
    if columns is not None and (isinstance(columns, bool) or not isinstance(columns, int)
                                or columns < 1):
        raise InputError(f"columns must be a whole number >= 1, got {columns!r}.")
    caption_font = load_font(14)
    wrapped = [_wrap_caption(text, caption_font, CELL) for text in captions]
    count = len(images)
    columns = columns or max(1, min(MAX_COLUMNS, math.ceil(math.sqrt(count))))
    columns = min(columns, max(count, 1))
    rows = math.ceil(count / columns)
    cell_height = CELL + 4 + LINE * max((len(lines) for lines in wrapped), default=0)
    width = PAD + columns * (CELL + PAD)
    height = TITLE_HEIGHT + max(rows, 1) * (cell_height + PAD) + PAD
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((PAD, PAD), fit_text(title, load_font(18), width - 2 * PAD), fill=TEXT,
              font=load_font(18))
    if not count:
        draw.text((PAD, TITLE_HEIGHT + PAD), "no sample images", fill=TEXT, font=caption_font)
    for index, (image, lines) in enumerate(zip(images, wrapped, strict=True)):
        x = PAD + (index % columns) * (CELL + PAD)
        y = TITLE_HEIGHT + (index // columns) * (cell_height + PAD)
        thumb = fit(image, CELL)
        canvas.paste(thumb, (x + (CELL - thumb.width) // 2, y + (CELL - thumb.height) // 2))
        for n, line in enumerate(lines):
            draw.text((x + 2, y + CELL + 4 + n * LINE), line, fill=TEXT, font=caption_font)
    return canvas


def fit(image: Image.Image, side: int) -> Image.Image:
    """``image`` as RGB, scaled so its longest side is ``side`` (up or down), proportions
    kept."""
    rgb = to_rgb_pil(image)
    scale = side / max(rgb.width, rgb.height)
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    return rgb if size == rgb.size else rgb.resize(size, Image.Resampling.LANCZOS)


def thumbnail(image: Image.Image) -> Image.Image:
    """What the live panel shows of a sample image: at most `THUMBNAIL` px on its longest side
    (a smaller image is kept as it is: enlarging adds bytes, not detail)."""
    rgb = to_rgb_pil(image)
    return rgb if max(rgb.size) <= THUMBNAIL else fit(rgb, THUMBNAIL)


def _wrap_caption(text: str, font, width: int) -> list[str]:
    """``text`` broken at its newlines and spaces into lines at most ``width`` px wide, at most
    `MAX_LINES` of them (the last one cut with "…" when more would follow)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current = ""
        for word in paragraph.split(" "):
            candidate = f"{current} {word}" if current else word
            if current and font.getlength(candidate) > width - 4:
                lines.append(current)
                current = word
            else:
                current = candidate
        lines.append(current)
    if len(lines) > MAX_LINES:
        lines = [*lines[:MAX_LINES - 1], lines[MAX_LINES - 1] + " …"]
    return [fit_text(line, font, width - 4) for line in lines]




def save_thumbnails(save, pictures: list[Image.Image], run: str) -> list[dict]:
    """Thumbnails of ``pictures`` saved as UI images of run ``run`` through ``save`` (the
    runtime's ``save_ui_images``): the live events and the history's re-saves use the same."""
    return list(save([thumbnail(p) for p in pictures], f"{THUMBNAIL_PREFIX}/{run}"))
