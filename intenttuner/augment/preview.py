"""What a person checks before training on the augmented set: the produced items as a grid of
labelled tiles (pages of a bounded size), and a text summary.

Each tile is the item as the training set will hold it (cut by `render.render_item`), framed in
its operation's colour (the intent preview's: keep green, modify blue; originals grey) and
labelled with its concept, operation and source. Where IntentInpaint removed something, the
removed region's contour is drawn on every tile that shows it, and a tile that is mostly painted
out says so on the tile: a huge delete mask stays visible, it is never hidden.
"""

from __future__ import annotations

import textwrap

import numpy as np
from PIL import Image, ImageDraw

from ..drawing import font as load_font
from ..intent.preview import BACKGROUND, COLOURS, TEXT
from ..intent.schema import Operation
from .outline import outlined
from .render import render_item
from .types import ORIGINAL_GROUP, Augmented, AugmentPlan, CropItem

TILE = 192  # side of the square an item is fitted into, px
COLUMNS = 6
ROWS_PER_PAGE = 5  # 30 tiles a page: a page stays under ~1200 x 1400 px however many items
PAD = 8
BORDER = 3
LINE = 16  # label line height, px
HEADER_LINES = 6  # warning lines on the first page; the summary has all of them
HUGE_MASK = 0.5  # a tile (or source) more than half painted out is flagged
OUTLINE = COLOURS[Operation.DELETE]  # removed regions: the colour of delete concepts
WARNING = (255, 196, 0)
FRAME = {"keep": COLOURS[Operation.KEEP], "modify": COLOURS[Operation.MODIFY],
         "original": COLOURS[None]}


def short_name(name: str, limit: int = 24) -> str:
    """The file name without its folders, shortened in the middle beyond ``limit`` chars."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if len(base) <= limit:
        return base
    keep = limit - 2
    return f"{base[:keep - keep // 2]}..{base[-(keep // 2):]}"


def upscale_factor(item: CropItem) -> float:
    """How much the item is enlarged from its region (1.0 when it is not)."""
    width, height = item.region[2] - item.region[0], item.region[3] - item.region[1]
    return min(item.out_size) / min(width, height)


def tile_labels(plan: AugmentPlan) -> list[tuple[str, str]]:
    """Per item, the two label lines of its tile: what it shows and where it comes from."""
    labels = []
    for item in plan.items:
        if item.operation == "original":
            title = "original"
        else:
            value = f": {item.value}" if item.value and item.value != item.concept else ""
            title = f"{item.concept}{value} ({item.operation})"
        source = short_name(item.source_name)
        factor = upscale_factor(item)
        if factor > 1.0:
            source += f"  up x{factor:.2f}"
        if item.removed:
            source += f"  -{', '.join(item.removed)}"
        labels.append((title, source))
    return labels


def mask_share(mask: np.ndarray | None, region: tuple[int, int, int, int]) -> float:
    """Share of ``region`` that ``mask`` (H x W bool, the whole source) removed."""
    if mask is None:
        return 0.0
    x0, y0, x1, y1 = region
    part = mask[y0:y1, x0:x1]
    return float(part.mean()) if part.size else 0.0


def mask_warnings(augmented: Augmented) -> list[str]:
    """A warning per source whose removal mask does not fit it, or covers most of it. Once
    IntentInpaint ran (``augmented.inpaint`` set) its own coverage warnings are in the plan's,
    so coverage is only checked here for masks that came another way."""
    warnings = []
    names = augmented.source_names()
    for index, (source, mask) in enumerate(zip(augmented.sources, augmented.masks, strict=True)):
        name = names[index]
        if mask is None:
            continue
        if mask.shape != (source.height, source.width):
            warnings.append(f"{name}: the removal mask is {mask.shape[1]}x{mask.shape[0]} but "
                            f"the image is {source.width}x{source.height}; its outline is not "
                            "drawn. Re-run IntentInpaint on these images.")
            continue
        share = float(mask.mean())
        if share > HUGE_MASK and not augmented.inpaint:
            warnings.append(f"{name}: the removed region covers {share:.0%} of the image. "
                            "Check the delete concept's boxes in the preview; a mask this "
                            "large usually means a wrong detection.")
    return warnings


def summary(augmented: Augmented) -> str:
    """Items per group, crops upscaled and merged, every skipped crop with its reason, and the
    warnings (the plan's and those about removal masks)."""
    plan = augmented.plan
    groups: dict[str, int] = {}
    for item in plan.items:
        groups[item.group] = groups.get(item.group, 0) + 1
    counts = ", ".join(f"{g} {n}" for g, n in sorted(
        groups.items(), key=lambda kv: (kv[0] != ORIGINAL_GROUP, kv[0])))
    lines = [f"{len(plan.items)} item(s) from {len(augmented.sources)} image(s): "
             f"{counts or 'none'}"]
    upscaled = sum(upscale_factor(i) > 1.0 for i in plan.items)
    if upscaled:
        lines.append(f"{upscaled} crop(s) upscaled to the {plan.settings.get('min_size')} px "
                     f"minimum ({plan.settings.get('upscale_method')})")
    if augmented.inpaint:
        lines.append(f"Inpainted: {augmented.inpaint.get('backend', augmented.inpaint)}")
    if plan.skipped:
        lines.append(f"Not cropped ({len(plan.skipped)}):")
        lines += [f"  - {s}" for s in plan.skipped]
    lines += [f"WARNING: {w}" for w in [*plan.warnings, *mask_warnings(augmented)]]
    return "\n".join(lines)


def render_tile(source: Image.Image, item: CropItem, mask: np.ndarray | None = None,
                labels: tuple[str, str] = ("", ""), size: int = TILE) -> Image.Image:
    """One tile: the item fitted into ``size`` x ``size``, framed in its operation's colour,
    the contour of ``mask`` (the source's removal mask, H x W bool) drawn where it falls, and
    ``labels`` (two lines) below."""
    image = render_item(source, item)
    scale = min(size / image.width, size / image.height)
    shown = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                         Image.Resampling.BILINEAR)
    share = 0.0
    if mask is not None and mask.shape == (source.height, source.width):
        x0, y0, x1, y1 = item.region
        shown = outlined(shown, mask[y0:y1, x0:x1], OUTLINE)
        share = mask_share(mask, item.region)
    tile = Image.new("RGB", (size + 2 * BORDER, size + 2 * BORDER + 2 * LINE + 4), BACKGROUND)
    left = BORDER + (size - shown.width) // 2
    top = BORDER + (size - shown.height) // 2
    tile.paste(shown, (left, top))
    draw = ImageDraw.Draw(tile)
    draw.rectangle((left - BORDER, top - BORDER, left + shown.width + BORDER - 1,
                    top + shown.height + BORDER - 1), outline=FRAME[item.operation], width=BORDER)
    font = load_font(13)
    if share > HUGE_MASK:
        badge = f"WARNING: {share:.0%} removed"
        draw.rectangle((BORDER, BORDER, BORDER + draw.textlength(badge, font=font) + 6,
                        BORDER + LINE), fill=(0, 0, 0))
        draw.text((BORDER + 3, BORDER + 1), badge, fill=WARNING, font=font)
    for row, (text, colour) in enumerate(zip(labels, (TEXT, (170, 170, 170)), strict=True)):
        draw.text((BORDER, size + 2 * BORDER + 2 + row * LINE),
                  _fit(draw, text, font, size), fill=colour, font=font)
    return tile


def render_pages(augmented: Augmented, columns: int = COLUMNS,
                 rows: int = ROWS_PER_PAGE) -> list[Image.Image]:
    """The preview grid, ``columns`` x ``rows`` tiles a page, plan order; the first page starts
    with the warnings. Items are cut one at a time (`render_item`), so even a long plan of large
    sources never holds more than one full-size item."""
    plan = augmented.plan
    columns = min(columns, max(1, len(plan.items)))  # a short plan: a narrow page
    per_page = columns * rows
    labels = tile_labels(plan)
    count = max(1, -(-len(plan.items) // per_page))
    warnings = [*plan.warnings, *mask_warnings(augmented)]
    pages = []
    for page in range(count):
        items = list(enumerate(plan.items))[page * per_page:(page + 1) * per_page]
        lines = [f"IntentCrop: {len(plan.items)} item(s), page {page + 1}/{count}"]
        if page == 0:
            lines += _header_warnings(warnings, columns)
        tiles = [render_tile(augmented.sources[item.source_index], item,
                             augmented.masks[item.source_index], labels[i]) for i, item in items]
        pages.append(_compose(tiles, lines, columns))
    return pages


def _header_warnings(warnings: list[str], columns: int) -> list[str]:
    chars = max(30, columns * (TILE + 2 * BORDER + PAD) // 7)
    wrapped = [line for w in warnings
               for line in textwrap.wrap(f"WARNING: {w}", chars, subsequent_indent="  ")]
    if len(wrapped) > HEADER_LINES:
        rest = len(wrapped) - HEADER_LINES + 1
        wrapped = [*wrapped[:HEADER_LINES - 1], f"... {rest} more line(s): see the summary"]
    return wrapped


def _compose(tiles: list[Image.Image], lines: list[str], columns: int) -> Image.Image:
    cell_w = TILE + 2 * BORDER + PAD
    cell_h = (tiles[0].height if tiles else 0) + PAD
    header = PAD + LINE * len(lines) + PAD
    rows = -(-len(tiles) // columns)
    page = Image.new("RGB", (PAD + columns * cell_w, header + rows * cell_h), BACKGROUND)
    draw = ImageDraw.Draw(page)
    font = load_font(13)
    for i, line in enumerate(lines):
        draw.text((PAD, PAD + i * LINE), line, fill=WARNING if i else TEXT, font=font)
    for i, tile in enumerate(tiles):
        page.paste(tile, (PAD + (i % columns) * cell_w, header + (i // columns) * cell_h))
    return page


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """``text`` cut (with '..') to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "..", font=font) > width:
        text = text[:-1]
    return text + ".."
