"""What a person reads to check an intent: a text summary and a preview image (the summary above
a grid of the labelled reference crops, colour-coded by operation)."""

from __future__ import annotations

import textwrap

from PIL import Image, ImageDraw

from ..drawing import font as load_font
from .schema import Concept, Intent, Operation

COLOURS = {Operation.KEEP: (46, 160, 67), Operation.MODIFY: (47, 110, 220),
           Operation.DELETE: (210, 50, 50), None: (120, 120, 120)}
BACKGROUND = (24, 24, 28)
TEXT = (235, 235, 235)
THUMB = 160  # side of a reference crop tile, pixels
PAD = 12


def summary(intent: Intent) -> str:
    """Readable lines: trigger/domain, one line per concept, then notes and unplaced text."""
    lines = [f"Trigger: {', '.join(intent.trigger_words)}    Domain: {intent.domain.value}    "
             f"Parser: {intent.parser}"]
    for operation in Operation:
        for concept in intent.by_operation(operation):
            lines.append(f"{operation.value.upper():7} {_describe(concept)}")
    if not intent.concepts:
        lines.append("(no concepts)")
    lines += [f"Note: {n}" for n in intent.notes]
    missing = intent.missing_crops()
    if missing:
        boxes = ", ".join(f"[{n}]" for n in missing)
        lines.append(f"Note: reference box(es) {boxes} have no crop (the intent was saved or "
                     "exported without crops). Reference Filter needs them: re-run Intent "
                     "Parse with the reference images.")
    lines += [f"NOT UNDERSTOOD: {s}" for s in intent.unplaced]
    return "\n".join(lines)


def _describe(concept: Concept) -> str:
    text = f"{concept.name} ({concept.granularity.value}"
    if concept.phrase != concept.name:
        text += f", detect '{concept.phrase}'"
    text += ")" + "".join(f" [{n}]" for n in concept.references)
    if concept.values:
        text += ": " + " | ".join(v.text + "".join(f" [{n}]" for n in v.references)
                                  for v in concept.values)
    return text


def render_preview(intent: Intent, width: int = 768) -> Image.Image:
    """The summary as text, then the reference crops labelled with their concept."""
    font = load_font(15)
    chars = max(20, (width - 2 * PAD) // 8)
    lines = [wrapped for line in summary(intent).splitlines()
             for wrapped in textwrap.wrap(line, chars, subsequent_indent="        ") or [""]]
    line_height = 20
    text_height = PAD + line_height * len(lines)
    per_row = max(1, (width - PAD) // (THUMB + PAD))
    rows = -(-len(intent.references) // per_row)
    tile_height = THUMB + 2 * line_height + PAD
    canvas = Image.new("RGB", (width, text_height + rows * tile_height + PAD), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        draw.text((PAD, PAD + i * line_height), line, fill=_line_colour(line), font=font)
    for i, ref in enumerate(intent.references):
        x = PAD + (i % per_row) * (THUMB + PAD)
        y = text_height + (i // per_row) * tile_height
        _draw_reference(canvas, draw, intent, ref.index, (x, y), font)
    return canvas


def _draw_reference(canvas: Image.Image, draw: ImageDraw.ImageDraw, intent: Intent, n: int,
                    at: tuple[int, int], font) -> None:
    x, y = at
    concept, label = _bound_to(intent, n)
    colour = COLOURS[concept.operation if concept else None]
    crop = intent.reference(n).crop()
    if crop is not None:
        crop.thumbnail((THUMB, THUMB))
        canvas.paste(crop, (x + (THUMB - crop.width) // 2, y + (THUMB - crop.height) // 2))
    else:
        draw.text((x + 10, y + THUMB // 2 - 8), "(no crop saved)", fill=COLOURS[None], font=font)
    draw.rectangle((x, y, x + THUMB - 1, y + THUMB - 1), outline=colour, width=3)
    draw.text((x, y + THUMB + 2), f"[{n}] {label}"[:24], fill=colour, font=font)
    if concept:
        draw.text((x, y + THUMB + 20), concept.operation.value, fill=colour, font=font)


def _bound_to(intent: Intent, n: int) -> tuple[Concept | None, str]:
    """The concept reference ``n`` is bound to, and the label to print under its crop."""
    for concept in intent.concepts:
        if n in concept.references:
            return concept, concept.name
        for value in concept.values:
            if n in value.references:
                return concept, value.text
    return None, intent.reference(n).label or "(not bound)"


def _line_colour(line: str) -> tuple[int, int, int]:
    for operation in Operation:
        if line.startswith(operation.value.upper()):
            return COLOURS[operation]
    return (240, 180, 60) if line.startswith(("Note", "NOT UNDERSTOOD")) else TEXT
