"""What a finished run shows its user: the loss per step as a chart, and a few lines of text.

The diffusion loss of a single step is noisy (its timestep is random), so the chart draws the
raw values faintly and an exponential moving average over them (the trend a user reads) on top,
the way TensorBoard's smoothing does. Everything is drawn with PIL: no plotting library.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from ..drawing import font

SIZE = (720, 400)
MARGIN = {"left": 72, "right": 24, "top": 44, "bottom": 48}
BACKGROUND, AXES, GRID = (255, 255, 255), (60, 60, 60), (228, 228, 228)
RAW, TREND = (160, 190, 235), (20, 80, 190)
SMOOTHING = 0.9  # weight of the past in the moving average
TICKS = 5


def smooth(values: list[float], weight: float = SMOOTHING) -> list[float]:
    """Exponential moving average, debiased at the start (no pull towards 0)."""
    out, average, total = [], 0.0, 0.0
    for value in values:
        average = weight * average + (1 - weight) * value
        total = weight * total + (1 - weight)
        out.append(average / total)
    return out


def nice_step(span: float, ticks: int = TICKS) -> float:
    """A round tick distance (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def loss_chart(losses: list[float], title: str, size: tuple[int, int] = SIZE) -> Image.Image:
    """The loss of each optimizer step (step 1 first) as an RGB image ``size`` large."""
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN["left"], 12), title, fill=AXES, font=font(18))
    points = [(i + 1, v) for i, v in enumerate(losses) if math.isfinite(v)]
    box = (MARGIN["left"], MARGIN["top"], size[0] - MARGIN["right"], size[1] - MARGIN["bottom"])
    if not points:
        draw.text((box[0] + 8, (box[1] + box[3]) // 2), "no finished steps", fill=AXES,
                  font=font(16))
        return image
    low, high = value_range([v for _, v in points])
    last = max(points[-1][0], 2)

    def xy(step: float, value: float) -> tuple[float, float]:
        x = box[0] + (step - 1) / (last - 1) * (box[2] - box[0])
        y = box[3] - (value - low) / (high - low) * (box[3] - box[1])
        return x, y

    _axes(draw, box, low, high, last, xy)
    raw = [xy(s, v) for s, v in points]
    trend = [xy(s, v) for (s, _), v in zip(points, smooth([v for _, v in points]), strict=True)]
    for line, colour, width in ((raw, RAW, 1), (trend, TREND, 2)):
        if len(line) > 1:
            draw.line(line, fill=colour, width=width)
        else:
            x, y = line[0]
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
    legend = f"loss (light), moving average (dark); last {points[-1][1]:.4g}"
    draw.text((box[2], 18), legend, fill=AXES, font=font(13), anchor="ra")
    return image


def value_range(values: list[float]) -> tuple[float, float]:
    """The y axis: the values padded by 5 % of their span, and at least 1 % of their size, so
    (near-)equal values still get a range their ticks can be counted in."""
    low, high = min(values), max(values)
    pad = max((high - low) * 0.05, max(abs(low), abs(high)) * 0.01, 1e-6)
    return low - pad, high + pad


def _axes(draw: ImageDraw.ImageDraw, box, low: float, high: float, last: int, xy) -> None:
    small = font(12)
    step = nice_step(high - low)
    decimals = max(0, -math.floor(math.log10(step)))  # enough digits to tell ticks apart
    # Integer tick indices: adding ``step`` to a float can stall (tick + step == tick).
    for index in range(math.ceil(low / step), math.floor(high / step) + 1):
        tick = index * step
        _, y = xy(1, tick)
        draw.line((box[0], y, box[2], y), fill=GRID)
        draw.text((box[0] - 6, y), f"{tick:.{decimals}f}", fill=AXES, font=small, anchor="rm")
    x_step = max(1, int(nice_step(last - 1)))
    for s in range(x_step, last + 1, x_step) if last > 1 else ():
        x, _ = xy(s, low)
        draw.line((x, box[3], x, box[3] + 4), fill=AXES)
        draw.text((x, box[3] + 6), str(s), fill=AXES, font=small, anchor="mt")
    draw.rectangle(box, outline=AXES)
    draw.text(((box[0] + box[2]) / 2, box[3] + 6 + 14), "step", fill=AXES, font=small,
              anchor="mt")


def step_event(info: Any) -> dict[str, Any]:
    """The JSON payload of the per-step event: the plain fields (numbers, strings) of the
    trainer's ``StepInfo``; a non-finite number becomes null (JSON has no NaN)."""
    names = ([f.name for f in dataclasses.fields(info)] if dataclasses.is_dataclass(info)
             else list(vars(info)))
    data = {}
    for name in names:
        value = getattr(info, name)
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        if value is None or isinstance(value, (bool, int, float, str)):
            data[name] = value
    return data


def run_summary(result, lora_name: str) -> str:
    """The report of a finished run (``result``: a ``trainer.TrainResult``): where the LoRA is,
    how the loss went, and the command that repeats, resumes or scales out the run."""
    # (step, loss) of the finite losses: steps stay the run's own when some losses are NaN.
    finite = [(i + 1, v) for i, v in enumerate(result.losses) if math.isfinite(v)]
    lines = [f"Trained {result.run_name}: {result.steps} step(s)."]
    if finite:
        tail = [v for _, v in finite[-10:]]
        best_step, best = min(finite, key=lambda point: point[1])
        lines.append(f"Loss: last {finite[-1][1]:.4g}, mean of the last {len(tail)} "
                     f"{sum(tail) / len(tail):.4g}, lowest {best:.4g} at step {best_step}.")
    lines.append(f"LoRA: {lora_name} (models/loras; LoraLoader and Apply Trained LoRA load it).")
    config = Path(result.run_dir) / "config.json"
    lines.append(f"Run folder: {result.run_dir} (config.json, metrics.jsonl, "
                 f"{len(result.checkpoints)} checkpoint(s)).")
    lines.append(f'Headless or on several GPUs: python -m intenttuner train "{config}" '
                 "(torchrun --nproc_per_node N -m intenttuner train ...), add --resume "
                 "<checkpoint> to continue.")
    lines += [f"Warning: {w}" for w in result.warnings]
    return "\n".join(lines)
