"""A run's curves as one picture: what the optimizer did on top, what the intent says below.

Top: the loss of every step (raw values faintly, their moving average on top, as the training
report draws it) and the learning rate on its own axis at the right. Below, over the sample
steps: the combined score (black), each metric (thick) and each of its concepts (thin, in the
concept's colour of the detection previews). Metrics the plan could not measure are listed as
n/a instead of being drawn as 0, and the best step is marked across both panels. Both panels
share the step axis, from 0 to the run's total steps, so a stopped run shows where it stopped.
Everything is drawn with PIL, like training.report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw

from ..detection.preview import colour_of
from ..drawing import font
from ..errors import InputError
from ..training.report import AXES, BACKGROUND, GRID, RAW, TREND, nice_step, smooth, value_range
from .events import END, SAMPLE, START
from .runlog import is_step, of_event

SIZE = (900, 560)
MIN_SIZE = (480, 320)
LEFT, RIGHT_AXIS, LEGEND, TOP, GAP, BOTTOM = 64, 56, 230, 40, 34, 30  # pixels
LR = (150, 90, 200)
COMBINED, BEST, MUTED = (20, 20, 20), (235, 150, 0), (150, 150, 150)
METRIC_COLOURS = {"stability": (31, 110, 190), "controllability": (40, 150, 60),
                  "leakage": (200, 40, 40)}
OTHER_METRIC = (110, 110, 110)
LOWER_IS_BETTER = ("leakage",)
Point = tuple[float, float]  # (step, value)


@dataclass(frozen=True)
class Layout:
    """Where the panels are in an image of ``size``: boxes (left, top, right, bottom) in
    pixels, and the step axis they share (0 .. ``last``)."""

    size: tuple[int, int]
    last: int

    @property
    def top(self) -> tuple[int, int, int, int]:
        height = (self.size[1] - TOP - GAP - BOTTOM) * 2 // 5
        return LEFT, TOP, self._right, TOP + height

    @property
    def bottom(self) -> tuple[int, int, int, int]:
        return LEFT, self.top[3] + GAP, self._right, self.size[1] - BOTTOM

    @property
    def legend_x(self) -> int:
        return self.size[0] - LEGEND + 8

    @property
    def _right(self) -> int:
        return self.size[0] - LEGEND - RIGHT_AXIS

    def x(self, step: float) -> float:
        left, _, right, _ = self.top
        return left + step / self.last * (right - left)


@dataclass
class Metric:
    name: str
    points: list[Point] = field(default_factory=list)
    concepts: dict[str, list[Point]] = field(default_factory=dict)


@dataclass
class Curves:
    """What `curves_image` draws, read from metrics.jsonl records (see `read`)."""

    title: str
    last: int                                     # the step axis's end
    losses: list[Point] = field(default_factory=list)
    lrs: list[Point] = field(default_factory=list)
    combined: list[Point] = field(default_factory=list)
    metrics: dict[str, Metric] = field(default_factory=dict)  # every metric any point names
    best: Point | None = None                     # (step, combined score) of the best point
    sampled: bool = True                          # False: the run monitors the loss only


def curves_image(records: list[dict[str, Any]], size: tuple[int, int] = SIZE) -> Image.Image:
    """The curves of a run's metrics.jsonl ``records`` (`runlog.read_records`; any records
    of a run, finished or not, none at all) as an RGB image ``size`` large."""
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or any(not isinstance(v, int) or v < low
                   for v, low in zip(size, MIN_SIZE, strict=True))):
        raise InputError(f"size must be (width, height) of at least {MIN_SIZE}, got {size!r}.")
    curves = read(records)
    layout = Layout(tuple(size), curves.last)
    image = Image.new("RGB", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((LEFT, 10), curves.title, fill=AXES, font=font(16))
    _loss_panel(draw, layout, curves)
    _score_panel(draw, layout, curves)
    if curves.best is not None:
        _best_marker(draw, layout, curves.best)
    return image


def read(records: list[dict[str, Any]]) -> Curves:
    """The series of ``records``: every step record's loss and lr, the sample points' scores
    (of the metrics and concepts they measured), the best point and the run's step count."""
    steps = [r for r in records if is_step(r)]
    samples = of_event(records, SAMPLE)
    starts, ends = of_event(records, START), of_event(records, END)
    start = starts[-1] if starts else {}
    curves = Curves(title=_title(start, steps, ends), last=1,
                    sampled=bool((start.get("monitor") or {}).get("enabled", True)))
    curves.losses = [(r["step"], r["loss"]) for r in steps if _number(r.get("loss"))]
    curves.lrs = [(r["step"], r["lr"]) for r in steps if _number(r.get("lr"))]
    for sample in samples:
        step = sample.get("step")
        if not _number(step):
            continue
        if _number(sample.get("score")):
            curves.combined.append((step, sample["score"]))
        for name, result in (sample.get("scores") or {}).items():
            metric = curves.metrics.setdefault(name, Metric(name))
            if _number(result.get("score")) and result.get("applicable", True):
                metric.points.append((step, result["score"]))
            for concept, value in (result.get("concepts") or {}).items():
                points = metric.concepts.setdefault(concept, [])
                if _number(value):
                    points.append((step, value))
    curves.metrics = dict(sorted(curves.metrics.items(), key=lambda kv: _metric_order(kv[0])))
    curves.best = _best(ends[-1] if ends else None, curves.combined)
    seen = [r["step"] for r in steps] + [s["step"] for s in samples if _number(s.get("step"))]
    curves.last = max([1, *seen, *(_whole(s.get("total_steps")) for s in starts)])
    return curves


def _title(start: dict, steps: list[dict], ends: list[dict]) -> str:
    run = start.get("run") or "training run"
    done = ends[-1].get("step") if ends else (steps[-1]["step"] if steps else 0)
    total = start.get("total_steps") or (steps[-1].get("total_steps") if steps else None)
    text = f"{run}: step {done}" + (f"/{total}" if total else "")
    return text + (f", {ends[-1].get('status')}" if ends else "")


def _best(end: dict | None, combined: list[Point]) -> Point | None:
    """The end record's best step (the monitor's choice), else the highest combined score so
    far (the earlier of equals, as the monitor picks)."""
    best = (end or {}).get("best")
    if isinstance(best, dict) and _number(best.get("step")):
        score = best.get("score")
        return best["step"], score if _number(score) else math.nan
    if not combined:
        return None
    return max(combined, key=lambda point: point[1])  # max keeps the first of equals


# --- the panels ---------------------------------------------------------------------------


def _loss_panel(draw: ImageDraw.ImageDraw, layout: Layout, curves: Curves) -> None:
    box = layout.top
    if not curves.losses:
        _note(draw, box, "no finished steps")
        _frame(draw, box, layout)
        return
    values = [v for _, v in curves.losses]
    low, high = value_range(values)
    _y_ticks(draw, box, low, high, left=True)
    _line(draw, layout, box, curves.losses, low, high, RAW, 1)
    trend = list(zip([s for s, _ in curves.losses], smooth(values), strict=True))
    _line(draw, layout, box, trend, low, high, TREND, 2)
    legend = [("loss (average dark)", TREND, f"{trend[-1][1]:.4g}")]
    if curves.lrs:
        lr_high = max(v for _, v in curves.lrs) * 1.05 or 1.0
        _y_ticks(draw, box, 0.0, lr_high, left=False)
        _line(draw, layout, box, curves.lrs, 0.0, lr_high, LR, 1)
        legend.append(("learning rate (right axis)", LR, f"{curves.lrs[-1][1]:.3g}"))
    _legend(draw, layout.legend_x, box[1], box[3], legend)
    _frame(draw, box, layout)


def _score_panel(draw: ImageDraw.ImageDraw, layout: Layout, curves: Curves) -> None:
    box = layout.bottom
    values = [v for _, v in curves.combined]
    for metric in curves.metrics.values():
        values += [v for _, v in metric.points]
        values += [v for points in metric.concepts.values() for _, v in points]
    if not values:
        _note(draw, box, "no sample points yet" if curves.sampled
              else "monitoring the loss only (no sample points)")
    low, high = min([0.0, *values]), max([1.0, *values])  # scores are 0..1 unless told
    _y_ticks(draw, box, low, high, left=True)
    legend: list[tuple[str, tuple[int, int, int], str]] = []
    for metric in curves.metrics.values():
        colour = METRIC_COLOURS.get(metric.name, OTHER_METRIC)
        label = metric.name + (" (lower is better)" if metric.name in LOWER_IS_BETTER else "")
        if not metric.points:
            legend.append((f"{label}: n/a", MUTED, ""))
            continue
        _line(draw, layout, box, metric.points, low, high, colour, 3, dots=True)
        legend.append((label, colour, f"{metric.points[-1][1]:.3f}"))
        for concept, points in metric.concepts.items():
            if points:
                _line(draw, layout, box, points, low, high, colour_of(concept), 1)
            legend.append((f"  {concept}" + ("" if points else ": n/a"),
                           colour_of(concept) if points else MUTED,
                           f"{points[-1][1]:.3f}" if points else ""))
    if curves.combined:
        _line(draw, layout, box, curves.combined, low, high, COMBINED, 2, dots=True)
        legend.insert(0, ("combined score", COMBINED, f"{curves.combined[-1][1]:.3f}"))
    _legend(draw, layout.legend_x, box[1], box[3], legend)
    _frame(draw, box, layout)


def _best_marker(draw: ImageDraw.ImageDraw, layout: Layout, best: Point) -> None:
    x = layout.x(best[0])
    for box in (layout.top, layout.bottom):
        draw.line((x, box[1] + 1, x, box[3] - 1), fill=BEST, width=2)
    score = "" if not _number(best[1]) else f" ({best[1]:.3f})"
    left, top, right, _ = layout.bottom
    anchor = "la" if x < (left + right) / 2 else "ra"
    draw.text((x + (4 if anchor == "la" else -4), top + 4), f"best: step {best[0]:g}{score}",
              fill=BEST, font=font(13), anchor=anchor)


# --- drawing helpers ------------------------------------------------------------------------


def _frame(draw: ImageDraw.ImageDraw, box, layout: Layout) -> None:
    """The panel's box (drawn last, over the grid lines) and its step ticks (0 ..
    layout.last, round numbers)."""
    small = font(12)
    step = max(1, int(nice_step(layout.last)))
    for s in range(0, layout.last + 1, step):
        x = layout.x(s)
        draw.line((x, box[3], x, box[3] + 4), fill=AXES)
        draw.text((x, box[3] + 6), str(s), fill=AXES, font=small, anchor="mt")
    draw.rectangle(box, outline=AXES)


def _y_ticks(draw: ImageDraw.ImageDraw, box, low: float, high: float, left: bool) -> None:
    """Round ticks of ``low``..``high``: grid lines and labels on the left axis, labels only
    on the right one (its grid would cross the left one's)."""
    small, step = font(12), nice_step(high - low)
    decimals = max(0, -math.floor(math.log10(step)))
    # Integer tick indices: adding ``step`` to a float can stall (tick + step == tick).
    for index in range(math.ceil(low / step), math.floor(high / step) + 1):
        tick = index * step
        y = _y(box, tick, low, high)
        label = f"{tick:.{decimals}f}" if decimals <= 4 else f"{tick:.2g}"  # lr: 5e-05
        if left:
            draw.line((box[0] + 1, y, box[2] - 1, y), fill=GRID)
            draw.text((box[0] - 6, y), label, fill=AXES, font=small, anchor="rm")
        else:
            draw.text((box[2] + 6, y), label, fill=LR, font=small, anchor="lm")


def _line(draw: ImageDraw.ImageDraw, layout: Layout, box, points: list[Point], low: float,
          high: float, colour, width: int, dots: bool = False) -> None:
    xy = [(layout.x(s), _y(box, v, low, high)) for s, v in points]
    if len(xy) > 1:
        draw.line(xy, fill=colour, width=width, joint="curve")
    for x, y in xy if dots or len(xy) == 1 else ():
        r = width + 1
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)


def _legend(draw: ImageDraw.ImageDraw, x: int, top: int, bottom: int, rows) -> None:
    """``rows`` of (label, colour, value) from ``top`` down; the rows that do not fit are
    counted in a last "+N more" row."""
    line = 17
    fits = max(1, (bottom - top) // line)
    if len(rows) > fits:
        rows = [*rows[:fits - 1], (f"+{len(rows) - fits + 1} more", MUTED, "")]
    small = font(13)
    for n, (label, colour, value) in enumerate(rows):
        y = top + n * line
        draw.rectangle((x, y + 4, x + 10, y + 12), fill=colour)
        draw.text((x + 16, y), label, fill=colour if colour == MUTED else AXES, font=small)
        if value:
            draw.text((x + LEGEND - 16, y), value, fill=AXES, font=small, anchor="ra")


def _note(draw: ImageDraw.ImageDraw, box, text: str) -> None:
    draw.text((box[0] + 10, (box[1] + box[3]) // 2), text, fill=MUTED, font=font(15),
              anchor="lm")


def _y(box, value: float, low: float, high: float) -> float:
    return box[3] - (value - low) / (high - low) * (box[3] - box[1])


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _whole(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _metric_order(name: str) -> tuple[int, str]:
    order = list(METRIC_COLOURS)
    return (order.index(name) if name in order else len(order), name)
