"""The monitor's events as TensorBoard event files in the run folder's ``tensorboard/``.

Optional: when the ``tensorboard`` package is not installed, `open_sink` returns None and the
monitor records metrics.jsonl only (the START event says so with ``tensorboard: null``). The
files are written with torch's own `SummaryWriter` (torch.utils.tensorboard), so nothing but
``tensorboard`` itself has to be installed. Tags:

- ``loss``, ``lr``: every optimizer step;
- ``score`` (the combined score), ``score/<metric>``, ``score/<metric>/<concept>``: every
  sample point, for the scores that were measured (n/a ones are left out, not drawn as 0);
- ``samples``: the sample grid of each point, when the monitor passes it to `add_grid`;
- ``run`` (text): the monitoring formula and notes at the start, warnings, the end.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .events import END, SAMPLE, START, STEP, WARNING

log = logging.getLogger(__name__)

LOG_DIR = "tensorboard"


def open_sink(run_dir: str | Path) -> TensorBoardSink | None:
    """A sink writing to ``run_dir``/tensorboard, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401  (needs tensorboard)
    except ImportError:
        log.info("tensorboard is not installed: the monitor writes metrics.jsonl only "
                 "(pip install tensorboard for TensorBoard event files)")
        return None
    return TensorBoardSink(Path(run_dir) / LOG_DIR)


class TensorBoardSink:
    """Writes one run's events. The writer is opened by the first event, so a START of a run
    resumed at step N can hide the previous attempt's steps >= N (TensorBoard's purge_step)
    instead of drawing both attempts over each other."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self._writer = None

    def write(self, event_name: str, payload: dict[str, Any]) -> None:
        """Record one event (``events.START`` ... ``events.END``, its contract payload)."""
        if event_name == START:
            start = payload.get("start_step") or 0
            # a run resumed after step N trains N+1... again: hide the old attempt's from there
            self._open(start + 1 if start else None)
            self._text("run", _start_text(payload), start)
        elif event_name == STEP:
            step = payload["step"]
            for tag in ("loss", "lr"):
                _scalar(self._open(), tag, payload.get(tag), step)
        elif event_name == SAMPLE:
            self._sample(payload)
        elif event_name == WARNING:
            self._text("run", f"Warning: {payload.get('message', '')}", payload.get("step") or 0)
        elif event_name == END:
            self._text("run", _end_text(payload), payload.get("step") or 0)
            self._open().flush()

    def add_grid(self, step: int, image) -> None:
        """The sample grid (a PIL image) of the point at ``step``."""
        import numpy as np

        pixels = np.asarray(image.convert("RGB"))
        self._open().add_image("samples", pixels, step, dataformats="HWC")
        self._open().flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _open(self, purge_step: int | None = None):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge_step)
        return self._writer

    def _sample(self, payload: dict[str, Any]) -> None:
        writer, step = self._open(), payload["step"]
        _scalar(writer, "score", payload.get("score"), step)
        for metric, result in (payload.get("scores") or {}).items():
            _scalar(writer, f"score/{metric}", result.get("score"), step)
            for concept, value in (result.get("concepts") or {}).items():
                _scalar(writer, f"score/{metric}/{concept}", value, step)
        writer.flush()  # a sample point is rare and worth seeing at once

    def _text(self, tag: str, text: str, step: int) -> None:
        self._open().add_text(tag, text, step)


def _scalar(writer, tag: str, value: Any, step: int) -> None:
    """Only measured numbers: a null (n/a, or a loss that was not finite) is a gap."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        writer.add_scalar(tag, float(value), step)


def _start_text(payload: dict[str, Any]) -> str:
    monitor = payload.get("monitor") or {}
    lines = [f"Run {payload.get('run')}: {payload.get('total_steps')} steps"]
    if monitor.get("enabled"):
        lines.append(f"Sampling every {monitor.get('sample_every_steps')} steps, "
                     f"{monitor.get('images_per_point')} image(s) per point.")
        lines.append(str(monitor.get("formula", "")))
    else:
        lines.append("Loss only (no sampling).")
    lines += [f"Note: {note}" for note in monitor.get("notes") or []]
    return "  \n".join(lines)  # markdown line breaks: TensorBoard renders text as markdown


def _end_text(payload: dict[str, Any]) -> str:
    best = payload.get("best")
    lines = [f"Run {payload.get('status')} at step {payload.get('step')}."]
    if best:
        lines.append(f"Best: step {best.get('step')} ({best.get('lora_name')}): "
                     f"{best.get('reason', '')}")
    if payload.get("message"):
        lines.append(str(payload["message"]))
    return "  \n".join(lines)
