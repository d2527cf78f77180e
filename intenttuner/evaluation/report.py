"""The comparison of several runs (LoRAs, checkpoints): a table and a grouped bar chart as one
image, and the same numbers as JSON.

Drawn with PIL, not matplotlib: matplotlib is in neither this pack's nor ComfyUI's
requirements, and importing it costs seconds (tests/test_pack.py keeps it out of the pack). A
metric that is not applicable is drawn as a hatched grey "n/a", never as a 0 bar that would
read as a result; a metric that was not run is "not run".
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass

from PIL import Image, ImageDraw

from ..drawing import column_widths, draw_table, fit_text
from ..drawing import font as load_font
from ..errors import InputError
from ..intent.preview import BACKGROUND, PAD, TEXT
from .preview import BAD, GOOD, MUTED, TITLES
from .types import EvalScores, MetricResult, Test

METRIC_COLOURS = {Test.STABILITY: GOOD, Test.CONTROLLABILITY: (47, 110, 220),
                  Test.LEAKAGE: BAD}  # the intent preview's keep / modify / delete colours
GRID = (60, 60, 68)
HATCH = (90, 90, 100)
ROW, NOTE = 26, 18  # table row and note line heights, pixels
CHART_HEIGHT = 260  # bar area, pixels
AXIS = 40  # room for the tick labels left of the bars
BAR, GROUP_GAP = 48, 40  # bar width and the least gap between two runs' groups, pixels
MAX_LABEL, CELL_PAD = 260, 16  # widest run-label column; space around a cell's text


@dataclass(frozen=True)
class Column:
    """One table column: a metric's score (``part`` None) or one of its named parts."""

    key: str  # the name in the JSON table rows
    title: str
    metric: Test
    part: str | None = None


COLUMNS = (
    Column("stability", "Stability", Test.STABILITY),
    Column("controllability", "Controllability", Test.CONTROLLABILITY),
    Column("leakage", "Delete leakage (lower is better)", Test.LEAKAGE),
    Column("identity", "identity", Test.STABILITY, "identity"),
    Column("quality", "quality", Test.STABILITY, "quality"),
    Column("balanced_accuracy", "balanced acc.", Test.CONTROLLABILITY, "balanced_accuracy"),
)
SCORES = COLUMNS[:3]  # the columns drawn as bars
GROUP = len(SCORES) * BAR + GROUP_GAP  # the width of one run's bars in the chart


def cell(scores: EvalScores, column: Column) -> tuple[float | None, str]:
    """The number of ``column`` for one run and, when there is none, why ('n/a: <reason>',
    'not run', 'not measured')."""
    result: MetricResult | None = scores.results.get(column.metric.value)
    if result is None:
        return None, "not run"
    if not result.applicable or result.score is None:
        return None, f"n/a: {result.reason}" if result.reason else "n/a"
    value = result.score if column.part is None else result.parts.get(column.part)
    return (value, "") if value is not None else (None, "not measured")


def table_rows(scores: list[EvalScores]) -> list[dict]:
    """One row per run: its label, every column's number (None when it has none) and, in
    ``missing``, why each missing number is missing."""
    check_labels(scores)
    rows = []
    for run in scores:
        row: dict = {"label": run.label}
        missing = {}
        for column in COLUMNS:
            row[column.key], why = cell(run, column)
            if why:
                missing[column.key] = why
        row["missing"] = missing
        rows.append(row)
    return rows


def check_labels(scores: list[EvalScores]) -> None:
    if not scores:
        raise InputError("The report needs at least one run's scores: connect a score node's "
                         "scores output to run_1.")
    seen = set()
    for run in scores:
        if run.label in seen:
            raise InputError(f"Two runs of the report are labelled '{run.label}': give each "
                             "model its own label on its first score node, so the rows can be "
                             "told apart.")
        seen.add(run.label)


def report_json(scores: list[EvalScores]) -> str:
    """``{"runs": [each run's scores without per-image records], "table": table_rows}``."""
    rows = table_rows(scores)
    runs = [json.loads(run.to_json(with_records=False, indent=None)) for run in scores]
    return json.dumps({"runs": runs, "table": rows}, indent=2)


def report_image(scores: list[EvalScores], title: str = "") -> Image.Image:
    """The table (a row per run, then why numbers are missing) above a bar chart of the three
    scores, grouped per run."""
    rows = table_rows(scores)
    font = load_font(14)
    widths = _column_widths(rows, font)
    width = max(PAD * 2 + sum(widths), PAD * 2 + AXIS + len(rows) * GROUP, 640)
    chars = (width - 2 * PAD) // 7
    notes = [line for note in _reasons(rows) for line in textwrap.wrap(note, chars)]
    top = PAD + (30 if title else 0)
    table_height = ROW * (len(rows) + 1) + NOTE * len(notes)
    legend_y = top + table_height + 2 * PAD
    chart_top = legend_y + ROW + 2 * PAD
    canvas = Image.new("RGB", (width, chart_top + CHART_HEIGHT + 2 * ROW), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((PAD, PAD), title, fill=TEXT, font=load_font(20))
    _table(draw, rows, widths, (PAD, top))
    for n, note in enumerate(notes):
        draw.text((PAD, top + ROW * (len(rows) + 1) + 4 + n * NOTE), note, fill=MUTED,
                  font=load_font(13))
    _legend(draw, (PAD, legend_y))
    _chart(draw, rows, (PAD + AXIS, chart_top, width - PAD, chart_top + CHART_HEIGHT))
    return canvas


def _reasons(rows: list[dict]) -> list[str]:
    """Why a score is not applicable, once per run and metric (the table cell says only
    'n/a'; its parts' cells share the reason)."""
    return [f"{row['label']}: {TITLES[c.metric].lower()} {row['missing'][c.key]}"
            for row in rows for c in SCORES
            if row["missing"].get(c.key, "").startswith("n/a")]


def _cell_text(row: dict, column: Column) -> str:
    value = row[column.key]
    return f"{value:.3f}" if value is not None else row["missing"][column.key].split(":")[0]


def _cells(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """The table's header and each row's cell texts."""
    header = ["run", *(column.title for column in COLUMNS)]
    return header, [[row["label"], *(_cell_text(row, c) for c in COLUMNS)] for row in rows]


def _column_widths(rows: list[dict], font) -> list[int]:
    widths = column_widths(*_cells(rows), font, CELL_PAD)
    widths[0] = min(MAX_LABEL, widths[0])  # a long run label is cut, not the table widened
    return widths


def _table(draw: ImageDraw.ImageDraw, rows: list[dict], widths: list[int],
           at: tuple[int, int]) -> None:
    header, cells = _cells(rows)
    fills = [[TEXT, *(TEXT if row[c.key] is not None else MUTED for c in COLUMNS)]
             for row in rows]
    draw_table(draw, header, cells, widths, at, load_font(14), row_height=ROW, fill=TEXT,
               grid=GRID, fills=fills, pad=CELL_PAD)


def _fit(text: str, font, width: int) -> str:
    """``text`` cut to fit a column ``width`` pixels wide."""
    return fit_text(text, font, width - CELL_PAD)


def _legend(draw: ImageDraw.ImageDraw, at: tuple[int, int]) -> None:
    x, y = at
    font = load_font(14)
    for column in SCORES:
        label = TITLES[column.metric] + (" (lower is better)" if column.metric is Test.LEAKAGE
                                         else "")
        draw.rectangle((x, y + 3, x + 14, y + 17), fill=METRIC_COLOURS[column.metric])
        draw.text((x + 20, y + 2), label, fill=TEXT, font=font)
        x += 20 + int(draw.textlength(label, font=font)) + 24
    draw.rectangle((x, y + 3, x + 14, y + 17), outline=MUTED)
    _hatch(draw, (x, y + 3, x + 14, y + 17))
    draw.text((x + 20, y + 2), "not applicable / not run", fill=MUTED, font=font)


def _chart(draw: ImageDraw.ImageDraw, rows: list[dict],
           box: tuple[int, int, int, int]) -> None:
    """Bars on a fixed 0..1 axis (every score is a fraction), a group of three per run, the
    groups spread over the width."""
    font = load_font(13)
    left, top, right, bottom = box
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = bottom - tick * (bottom - top)
        draw.line((left, y, right, y), fill=GRID)
        draw.text((left - 6, y), f"{tick:g}", fill=MUTED, font=font, anchor="rm")
    draw.line((left, bottom, right, bottom), fill=TEXT)  # under the bars: a 0 bar stays seen
    slot = (right - left) / len(rows)
    for g, row in enumerate(rows):
        centre = left + (g + 0.5) * slot
        x = centre - BAR * len(SCORES) / 2
        for column in SCORES:
            _bar(draw, (x + 2, top, x + BAR - 2, bottom), row[column.key], column.metric, font)
            x += BAR
        draw.text((centre, bottom + 8), _fit(row["label"], font, int(slot)), fill=TEXT,
                  font=font, anchor="ma")


def _bar(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float],
         value: float | None, metric: Test, font) -> None:
    """One score as a bar from the axis, or hatched "n/a" over the full height without one."""
    x0, top, x1, bottom = box
    middle = (x0 + x1) / 2
    if value is None:
        _hatch(draw, box)
        draw.text((middle, (top + bottom) / 2), "n/a", fill=TEXT, font=font, anchor="mm",
                  stroke_width=3, stroke_fill=BACKGROUND)
        return
    # at least 3 px, so a measured 0 shows as a bar on the axis, unlike a missing number
    y = min(bottom - 3, bottom - max(0.0, min(1.0, value)) * (bottom - top))
    draw.rectangle((x0, y, x1, bottom), fill=METRIC_COLOURS[metric])
    draw.text((middle, y - 2), f"{value:.2f}", fill=TEXT, font=font, anchor="mb")


def _hatch(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float]) -> None:
    """Grey diagonal hatching inside ``box``: a place where no number is."""
    x0, y0, x1, y1 = (int(v) for v in box)
    draw.rectangle((x0, y0, x1, y1), outline=HATCH)
    for start in range(y0 - (x1 - x0), y1, 8):
        # a 45-degree line from the left edge at height ``start``, clipped to the box
        a = (x0 + max(0, y0 - start), max(y0, start))
        b = (x0 + min(x1 - x0, y1 - start), min(y1, start + (x1 - x0)))
        if a[0] <= b[0]:
            draw.line((a, b), fill=HATCH)
