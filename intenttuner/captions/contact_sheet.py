"""The captions a trainer will read, as one image: each item's thumbnail with its caption
wrapped under it (Caption Review's IMAGE output), and the small thumbnails its panel shows.

The sheet has a bounded size whatever the set's: at most `MAX_ITEMS` tiles (set order), then a
line saying how many more there are; captions beyond `CAPTION_LINES` lines end in '...'.
Captions edited by hand are labelled in the edit colour. Pillow's built-in font has no CJK
glyphs, and not even 'é': the sheet draws with the first Unicode-rich system font it finds
(`sheet_font`), else with Pillow's. Text a font cannot draw shows as boxes here only; the panel
and the files on disk hold it exactly.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from ..dataset.training_set import TrainingItem, TrainingSet
from ..drawing import font as load_font
from ..errors import InputError
from ..imageio import open_image, to_rgb_pil
from ..intent.preview import BACKGROUND, TEXT

log = logging.getLogger(__name__)

TILE = 192  # side of the square a thumbnail is fitted into, px
COLUMNS = 6
MAX_ITEMS = 30  # 5 rows of 6: the sheet stays under ~1260 x 1900 px however large the set
CAPTION_LINES = 6
PAD = 8
LINE = 16  # text line height, px
FONT_SIZE = 13
PANEL_THUMB = 160  # longest side of the panel's thumbnails, px
DIM = (160, 160, 160)
EDITED = (255, 196, 0)  # the colour of a hand-edited caption's label
MISSING = (90, 40, 40)
# Fonts with accents (and, the first three, CJK), tried in order; Pillow looks for a bare file
# name in the system's font folders (Windows, macOS, Linux /usr/share/fonts).
FONTS = ("NotoSansCJK-Regular.ttc", "Arial Unicode.ttf", "msyh.ttc", "DejaVuSans.ttf",
         "NotoSans-Regular.ttf", "LiberationSans-Regular.ttf", "arial.ttf", "Arial.ttf")


@lru_cache(maxsize=4)
def sheet_font(size: int = FONT_SIZE):
    """The first of `FONTS` installed here at ``size`` px, else Pillow's built-in font."""
    for name in FONTS:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return load_font(size)


def thumbnail(training_set: TrainingSet, item: TrainingItem, side: int) -> Image.Image:
    """The item's image, upright and RGB, fitted into ``side`` x ``side`` (never enlarged);
    a dark placeholder tile when the file cannot be read (the sheet still shows the caption).
    Do not modify it: it is shared with later calls."""
    try:
        path = training_set.image_path(item)
        stat = path.stat()
        return _thumbnail(str(path), stat.st_mtime_ns, stat.st_size, side)
    except (InputError, OSError) as exc:
        log.warning("no thumbnail for %s: %s", item.image, exc)
        return Image.new("RGB", (side, side), MISSING)


@lru_cache(maxsize=2048)  # ~150 MB at most; a set's images are written once, never changed
def _thumbnail(path: str, mtime_ns: int, size: int, side: int) -> Image.Image:
    """Cached by file identity: every caption edit re-runs Caption Review, and decoding a few
    hundred full-size images each time would take longer than the edit itself."""
    image = to_rgb_pil(open_image(path)).copy()
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return image


def panel_thumbnails(training_set: TrainingSet, limit: int) -> list[Image.Image]:
    """Thumbnails of the first ``limit`` items, set order, for the review panel."""
    return [thumbnail(training_set, item, PANEL_THUMB) for item in training_set.items[:limit]]


def render_contact_sheet(training_set: TrainingSet, edited: set[str] | frozenset[str] = (),
                         max_items: int = MAX_ITEMS, columns: int = COLUMNS) -> Image.Image:
    """The sheet: a header, then up to ``max_items`` tiles, ``columns`` a row. ``edited``: the
    images (item paths) whose caption is a hand edit, labelled as such."""
    items = training_set.items[:max_items]
    columns = max(1, min(columns, len(items) or 1))
    font = sheet_font()
    header = [f"Caption Review: {len(training_set.items)} image(s), "
              f"{sum(i.image in edited for i in training_set.items)} edited by hand"]
    rest = len(training_set.items) - len(items)
    footer = [f"... and {rest} more (all of them in the node's panel)"] if rest > 0 else []
    tiles = [_tile(training_set, item, item.image in edited, font) for item in items]
    cell_w, cell_h = TILE + PAD, TILE + (1 + CAPTION_LINES) * LINE + 2 * PAD
    rows = -(-len(tiles) // columns)
    top = PAD + LINE * len(header) + PAD
    width = PAD + columns * cell_w
    height = top + rows * cell_h + LINE * len(footer) + PAD
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for i, line in enumerate(header):
        draw.text((PAD, PAD + i * LINE), fit(draw, line, font, width - 2 * PAD), fill=TEXT,
                  font=font)
    for i, tile in enumerate(tiles):
        sheet.paste(tile, (PAD + (i % columns) * cell_w, top + (i // columns) * cell_h))
    for i, line in enumerate(footer):
        draw.text((PAD, top + rows * cell_h + i * LINE), line, fill=DIM, font=font)
    return sheet


def _tile(ts: TrainingSet, item: TrainingItem, edited: bool, font) -> Image.Image:
    """Thumbnail, a label line (group / concept, 'edited'), the caption wrapped below."""
    tile = Image.new("RGB", (TILE, TILE + (1 + CAPTION_LINES) * LINE + PAD), BACKGROUND)
    shown = thumbnail(ts, item, TILE)
    tile.paste(shown, ((TILE - shown.width) // 2, (TILE - shown.height) // 2))
    draw = ImageDraw.Draw(tile)
    what = item.group if not item.concept or item.concept == item.group else (
        f"{item.group}: {item.concept}")
    label = f"{what}  ({'edited' if edited else item.caption_source})"
    draw.text((0, TILE + 2), fit(draw, label, font, TILE), fill=EDITED if edited else DIM,
              font=font)
    lines = wrap(draw, item.caption or "(no caption)", font, TILE, CAPTION_LINES)
    for row, line in enumerate(lines):
        draw.text((0, TILE + 2 + (row + 1) * LINE), line, fill=TEXT, font=font)
    return tile


def wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int, max_lines: int) -> list[str]:
    """``text`` broken at spaces into lines of at most ``width`` pixels (a word wider than a
    line is cut), at most ``max_lines`` of them; the last ends in '...' when text is left."""
    lines: list[str] = []
    line = ""
    words = text.split()
    for i, word in enumerate(words):
        if len(lines) > max_lines:  # the rest only goes into the last line's '...'
            line = " ".join([line, *words[i:]]).strip()
            break
        candidate = f"{line} {word}" if line else word
        if draw.textlength(candidate, font=font) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        while draw.textlength(word, font=font) > width:  # a word longer than a line
            cut = _longest_prefix(draw, word, font, width)
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    if line:
        lines.append(line)
    if len(lines) > max_lines:
        lines = [*lines[:max_lines - 1], fit(draw, " ".join(lines[max_lines - 1:]), font,
                                             width, always=True)]
    return lines


def fit(draw: ImageDraw.ImageDraw, text: str, font, width: int, always: bool = False) -> str:
    """``text`` cut to fit ``width`` pixels with '...' (``always``: end in '...' anyway)."""
    if not always and draw.textlength(text, font=font) <= width:
        return text
    cut = _longest_prefix(draw, text, font, width, suffix="...") if text else 0
    return text[:cut].rstrip() + "..."


def _longest_prefix(draw: ImageDraw.ImageDraw, text: str, font, width: int,
                    suffix: str = "") -> int:
    """The most characters of ``text`` (at least 1) that fit ``width`` with ``suffix``:
    a binary search, since measuring every prefix of a long word is quadratic."""
    low, high = 1, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if draw.textlength(text[:middle] + suffix, font=font) <= width:
            low = middle
        else:
            high = middle - 1
    return low
