"""The monitor's events: their names, and the JSON they carry (docs/… in /tmp/design/contract.md
until this docstring says it all). Every payload has ``run`` (the run name) and ``node`` (the
ComfyUI node id, or None headless); the panel keeps the events of its own node's runs."""

from __future__ import annotations

import logging
import math
from typing import Any

PREFIX = "intenttuner.train."
START = PREFIX + "start"
STEP = PREFIX + "step"  # one per optimizer step (the trainer's StepInfo + run, node, time, eta_s)
SAMPLE = PREFIX + "sample"  # one per sample point: scores, combined score, thumbnails
WARNING = PREFIX + "warning"  # sampling failed (training goes on), or anything else to show
END = PREFIX + "end"  # finished / stopped / cancelled / failed, with the best checkpoint
EVENTS = (START, STEP, SAMPLE, WARNING, END)


def short(event: str) -> str:
    """``intenttuner.train.sample`` -> ``sample`` (the ``event`` key of metrics.jsonl records)."""
    return event[len(PREFIX):] if event.startswith(PREFIX) else event


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float as None (JSON has no NaN), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def log_event(event: str, data: dict) -> None:
    """An ``emit`` for runs without a UI (headless): each sample point and warning to the
    log, the other events left to the run folder's metrics.jsonl."""
    log = logging.getLogger("intenttuner.monitor")
    if event == SAMPLE:
        score = data.get("score")
        log.info("step %s: score %s (%.1f s, monitoring %.0f%% of the run)", data.get("step"),
                 f"{score:.3f}" if score is not None else "n/a", data.get("seconds") or 0,
                 100 * (data.get("overhead") or 0))
    elif event == WARNING:
        log.warning("step %s: %s", data.get("step"), data.get("message"))
