"""The monitor's records in the run folder's metrics.jsonl, beside the trainer's step records.

One JSON object per line. The trainer writes one record per optimizer step, as it always did
(its `StepInfo` fields, no ``event`` key); the monitor appends one record per other event,
``{"event": "start" | "sample" | "warning" | "end", ...payload}``. A reader tells them apart by
the ``event`` key alone, so runs trained before the monitor existed read the same way.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from ..training.run_folder import METRICS_FILE
from .events import STEP, json_safe, short

log = logging.getLogger(__name__)

# The monitor appends from the training thread, the HTTP API only reads; the lock keeps two
# RunLogs of one file (a test, a second monitor object) from interleaving half lines.
_append_lock = threading.Lock()


class RunLog:
    """Appends the monitor's event records to ``run_dir``/metrics.jsonl."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)

    @property
    def path(self) -> Path:
        return self.run_dir / METRICS_FILE

    def write(self, event_name: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Append ``{"event": short(event_name), **payload}`` (NaN/inf as null); returns the
        record written. Step events are not written (None): the trainer already writes each
        step's record, and a second copy would count every loss twice."""
        if event_name == STEP:
            return None
        # "event" first (easy to read), and never replaced by a payload key of that name
        record = json_safe({"event": short(event_name),
                            **{k: v for k, v in payload.items() if k != "event"}})
        line = json.dumps(record, ensure_ascii=False) + "\n"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with _append_lock, self.path.open("a", encoding="utf-8") as out:
            out.write(line)  # one write per line: a reader never sees half a record of ours
        return record


def read_records(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every record of ``run_dir``/metrics.jsonl in file order: step records (no ``event``
    key) and event records. Damaged lines (a run killed mid-write) are skipped."""
    path = Path(run_dir) / METRICS_FILE
    try:
        text = path.read_text("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    records, damaged = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            damaged += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            damaged += 1
    if damaged:
        log.debug("%s: skipped %d damaged line(s)", path, damaged)
    return records


def is_step(record: dict[str, Any]) -> bool:
    """A trainer step record: no ``event`` key, an integer ``step``."""
    return "event" not in record and isinstance(record.get("step"), int) \
        and not isinstance(record.get("step"), bool)


def of_event(records: list[dict[str, Any]], event_name: str) -> list[dict[str, Any]]:
    """The records of one event (``intenttuner.train.sample`` or ``sample``), in order."""
    name = short(event_name)
    return [r for r in records if r.get("event") == name]
