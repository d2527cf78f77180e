"""Small helpers shared by the preview renderers."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from PIL import ImageFont


@lru_cache(maxsize=8)
def font(size: int):
    """Pillow's built-in scalable font at ``size`` pixels (bitmap font on Pillow < 10.1)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def fit_text(text: str, font, width: int) -> str:
    """``text`` shortened with "…" until it is at most ``width`` px wide in ``font``."""
    while len(text) > 1 and font.getlength(text) > width:
        text = text[:-2] + "…"
    return text


def column_widths(header: Sequence[str], rows: Sequence[Sequence[str]], font,
                  pad: int) -> list[int]:
    """The width in px of each table column: its widest text (title or cell) plus ``pad``."""
    return [max(int(font.getlength(text)) for text in column) + pad
            for column in zip(header, *rows, strict=True)]


def draw_table(draw, header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[int],
               at: tuple[int, int], font, *, row_height: int, fill, grid,
               fills: Sequence[Sequence] | None = None, pad: int = 16) -> int:
    """A table of text: the ``header`` row, then ``rows``, a ``grid`` line above each row and
    below the last. Cells are cut with "…" to their column's width less ``pad``; ``fills`` (one
    colour per cell) overrides ``fill`` cell by cell. Returns the y of the bottom line."""
    x0, y0 = at
    xs = [x0 + sum(widths[:i]) for i in range(len(widths))]
    right = x0 + sum(widths)
    for x, width, text in zip(xs, widths, header, strict=True):
        draw.text((x + 6, y0 + 5), fit_text(text, font, width - pad), fill=fill, font=font)
    for r, row in enumerate(rows, start=1):
        y = y0 + r * row_height
        draw.line((x0, y, right, y), fill=grid)
        colours = fills[r - 1] if fills is not None else [fill] * len(row)
        for x, width, text, colour in zip(xs, widths, row, colours, strict=True):
            draw.text((x + 6, y + 5), fit_text(text, font, width - pad), fill=colour, font=font)
    bottom = y0 + row_height * (len(rows) + 1)
    draw.line((x0, bottom, right, bottom), fill=grid)
    return bottom
