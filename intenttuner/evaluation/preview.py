"""What a person reads to trust a metric: one image per metric with the score, its formula and
per-concept breakdown as text above a grid of the scored images, each with the box that was
used and a caption line saying what the metric saw in it.

The look is the intent and detection previews' (dark background, green for what went as
intended, red for what did not, each concept's box in its detection colour), so the same concept
reads the same in every node. Thumbnails are for display only: boxes are scaled from the
original image pixels the records hold. `plan_summary` is the plan's text counterpart: what
Evaluation Prompts shows before anything is generated.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from collections.abc import Sequence

from PIL import Image, ImageDraw

from ..detection.preview import colour_of
from ..drawing import fit_text
from ..drawing import font as load_font
from ..errors import InputError
from ..imageio import to_rgb_pil
from ..intent.preview import BACKGROUND, PAD, TEXT
from .types import EvalPlan, ImageRecord, MetricResult, Test

TITLES = {Test.STABILITY: "Stability", Test.CONTROLLABILITY: "Controllability",
          Test.LEAKAGE: "Delete leakage"}
GOOD, BAD = (46, 160, 67), (210, 50, 50)  # the intent preview's keep / delete colours
MUTED, WARNING = (150, 150, 150), (240, 180, 60)
THUMB = 192  # longest side of a thumbnail, pixels
LINE = 18  # height of a text line, pixels
MAX_CAPTIONS = 4  # caption lines under a thumbnail; more are counted as "+N more"
MIN_WIDTH = 640  # so the header has room even above a grid of one image


def render_metric(generated: Sequence, result: MetricResult, max_images: int = 32) -> Image.Image:
    """``result`` drawn over the images it was measured on.

    ``generated``: the `pairing.Generated` list the result was scored on (each with ``.image``,
    a PIL image, and ``.index``, the position ``ImageRecord.image`` refers to); images of any
    sizes. At most ``max_images`` images are drawn, in scored order; the header says how many
    were left out. A result without records (not applicable, nothing scored) is the header
    alone.
    """
    by_index = {g.index: g for g in generated}
    records = _records_by_image(result.records, by_index)
    shown = sorted(records)[:max_images]
    columns = max(1, min(len(shown), 6))
    width = max(MIN_WIDTH, PAD + columns * (THUMB + PAD))
    header = _header_lines(result, len(records), len(shown), width)
    header_height = PAD + LINE * len(header) + PAD
    tiles = [_tile(by_index[i].image, records[i], result.metric) for i in shown]
    row_heights = [max(t.height for t in tiles[r:r + columns])
                   for r in range(0, len(tiles), columns)]
    canvas = Image.new("RGB", (width, header_height + sum(h + PAD for h in row_heights)),
                       BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = load_font(15)
    for n, (text, colour) in enumerate(header):
        draw.text((PAD, PAD + n * LINE), text, fill=colour, font=font)
    y = header_height
    for r, height in enumerate(row_heights):
        for c, tile in enumerate(tiles[r * columns:(r + 1) * columns]):
            canvas.paste(tile, (PAD + c * (THUMB + PAD), y))
        y += height + PAD
    return canvas


def _records_by_image(records: list[ImageRecord], by_index: dict) -> dict[int, list]:
    grouped: dict[int, list[ImageRecord]] = defaultdict(list)
    for record in records:
        if record.image not in by_index:
            raise InputError(f"The result has a record of image {record.image} ({record.item}), "
                             f"but only {len(by_index)} generated image(s) were given: draw it "
                             "over the same images it was scored on.")
        grouped[record.image].append(record)
    return grouped


# --- the header: score, formula, per-concept lines, warnings --------------------------------


def _header_lines(result: MetricResult, scored: int, shown: int,
                  width: int) -> list[tuple[str, tuple[int, int, int]]]:
    lines = [(headline(result), TEXT if result.applicable else MUTED)]
    if result.applicable and result.formula:
        lines.append((result.formula, MUTED))
    parts = ", ".join(f"{name} {_number(value)}" for name, value in result.parts.items())
    if parts:
        lines.append((parts, MUTED))
    if result.models:
        lines.append((", ".join(f"{role}: {name}" for role, name in result.models.items()),
                      MUTED))
    lines += [(concept_line(c), TEXT if c.applicable else MUTED) for c in result.concepts]
    lines += [(f"WARNING: {w}", WARNING) for w in result.warnings]
    if shown < scored:
        lines.append((f"showing the first {shown} of {scored} scored images", MUTED))
    elif not scored:
        lines.append(("no image was scored", MUTED))
    chars = max(20, (width - 2 * PAD) // 8)
    return [(wrapped, colour) for text, colour in lines
            for wrapped in textwrap.wrap(text, chars, subsequent_indent="    ") or [""]]


def headline(result: MetricResult) -> str:
    """'Stability 0.823 (higher is better)' or 'Stability: not applicable: <reason>'."""
    title = TITLES[result.metric]
    if not result.applicable or result.score is None:
        return f"{title}: not applicable: {result.reason or 'no reason given'}"
    better = "higher" if result.higher_is_better else "lower"
    return f"{title} {result.score:.3f} ({better} is better)"


def concept_line(c) -> str:
    """One `ConceptResult` as a line of text (a controllability direction reads 'a vs b')."""
    name = f"{c.concept}: {c.target} vs {c.other}" if c.target is not None else c.concept
    if not c.applicable:
        return f"{name}: not applicable: {c.reason}"
    facts = [f"score {_number(c.score)}", f"{c.images} image(s)"]
    if c.detection_rate is not None:
        facts.append(f"found in {c.detection_rate:.0%}")
    if c.mean_similarity is not None:
        facts.append(f"mean similarity {c.mean_similarity:.3f}")
    if c.accuracy is not None:
        facts.append(f"accuracy {c.accuracy:.3f}")
    if c.mean_margin is not None:
        facts.append(f"mean margin {c.mean_margin:+.3f}")
    return f"{name}: " + ", ".join(facts) + (f" ({c.reason})" if c.reason else "")


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


# --- the tiles: a thumbnail, its boxes, its captions ----------------------------------------


def _tile(image: Image.Image, records: list[ImageRecord], metric: Test) -> Image.Image:
    captions = [c for c in (caption(r, metric) for r in records) if c is not None]
    quality = next((r.quality for r in records if r.quality is not None), None)
    if quality is not None:
        captions.append((f"quality {quality:.2f}", MUTED))
    if len(captions) > MAX_CAPTIONS:
        extra = len(captions) - MAX_CAPTIONS + 1
        captions = [*captions[:MAX_CAPTIONS - 1], (f"+{extra} more", MUTED)]
    font = load_font(14)
    lines = [(line, colour) for text, colour in captions for line in _wrap(text, font, THUMB)]
    thumb = to_rgb_pil(image)
    scale = min(THUMB / thumb.width, THUMB / thumb.height)
    thumb = thumb.resize((max(1, round(thumb.width * scale)), max(1, round(thumb.height * scale))),
                         Image.Resampling.BILINEAR)
    tile = Image.new("RGB", (THUMB, THUMB + 4 + LINE * len(lines)), BACKGROUND)
    offset = ((THUMB - thumb.width) // 2, (THUMB - thumb.height) // 2)
    tile.paste(thumb, offset)
    draw = ImageDraw.Draw(tile)
    for record in records:
        if record.box is not None:
            box = [offset[i % 2] + v * scale for i, v in enumerate(record.box)]
            # a leaked concept is a failure: red, like a dropped box in the detection preview
            colour = BAD if metric is Test.LEAKAGE else colour_of(record.concept or "")
            draw.rectangle(box, outline=colour, width=3)
    for n, (text, colour) in enumerate(lines):
        draw.text((2, THUMB + 4 + n * LINE), text, fill=colour, font=font)
    return tile


def _wrap(text: str, font, width: int) -> list[str]:
    """``text`` broken at spaces into lines at most ``width`` pixels wide (a single word wider
    than that is cut, so nothing is drawn outside its tile)."""
    lines: list[str] = []
    for word in text.split(" "):
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and font.getlength(candidate) <= width - 4:
            lines[-1] = candidate
        else:
            lines.append(word)
    return [fit_text(line, font, width - 4) for line in lines]




def caption(record: ImageRecord, metric: Test) -> tuple[str, tuple[int, int, int]] | None:
    """What ``metric`` saw in one image, as (text, colour); None when nothing was looked for.

    stability: 'face 0.82' / 'face MISSING' (red); controllability: 'red->blue -0.031' (the
    value prompted, the value CLIP chose, the margin), green when right, red when wrong;
    leakage: 'necklace LEAKED' in red or 'necklace clean' in green.
    """
    concept = record.concept or "image"
    if metric is Test.CONTROLLABILITY:
        if record.predicted is None or record.margin is None:
            return None
        where = " (whole image)" if record.found is False else ""
        text = f"{record.target}->{record.predicted} {record.margin:+.3f}{where}"
        return text, GOOD if record.correct else BAD
    if record.found is None:
        return None
    similarity = "" if record.similarity is None else f" {record.similarity:.2f}"
    if metric is Test.LEAKAGE:
        return (f"{concept} LEAKED{similarity}", BAD) if record.found else (f"{concept} clean",
                                                                             GOOD)
    if not record.found:
        return f"{concept} MISSING", BAD
    return f"{concept}{similarity or ' found'}", TEXT


# --- the plan, as text ------------------------------------------------------------------------


def plan_summary(plan: EvalPlan, max_prompts: int = 200) -> str:
    """How many images each test needs, the tests left out and why, then every prompt with its
    seed, numbered as the prompts and seeds lists are."""
    counts = ", ".join(f"{len(plan.for_test(t))} {t.value}" for t in Test if plan.for_test(t))
    lines = [f"{len(plan.items)} image(s) to generate for '{plan.trigger}' ({counts})"]
    lines += [f"Note: {note}" for note in plan.notes]
    lines += [f"{i:3d}  seed {item.seed}  {item.prompt}"
              for i, item in enumerate(plan.items[:max_prompts])]
    if len(plan.items) > max_prompts:
        lines.append(f"... and {len(plan.items) - max_prompts} more")
    return "\n".join(lines)
