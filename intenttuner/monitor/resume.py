"""What a run resumed in its own folder takes over from its earlier session(s): their sample
points up to the checkpoint, so a new point is the best only if it beats them too, and the best
copy they made, so the run keeps one ``<run>_best.safetensors`` instead of adding a ``-2``.

The trainer keeps the earlier sessions' monitor records in metrics.jsonl when it resumes in
the run's own folder (`training.trainer.resume_history`). A new run started from another
run's checkpoint gets step records only, so it takes over nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..training.run_hooks import one_line
from .best import BestCopy, pick
from .events import SAMPLE
from .runlog import of_event, read_records


@dataclass
class TakenOver:
    points: list[dict[str, Any]] = field(default_factory=list)  # SAMPLE payloads, in order
    best: dict[str, Any] | None = None  # the best of ``points``, whose copy ``path`` is
    path: Path | None = None
    note: str = ""  # why the earlier points are not compared against (empty: they are)


def earlier_points(run_dir: Path, start_step: int) -> list[dict[str, Any]]:
    """The SAMPLE payloads recorded in ``run_dir`` at steps <= ``start_step``, in order."""
    points = []
    for record in of_event(read_records(run_dir), SAMPLE):
        step = record.get("step")
        if isinstance(step, int) and not isinstance(step, bool) and step <= start_step:
            points.append({k: v for k, v in record.items() if k != "event"})
    return points


def take_over(run_dir: Path, start_step: int, best_copy: BestCopy) -> TakenOver:
    """The earlier points of a run resumed at ``start_step``, and their best with its copy:
    the file the last of them names as the best (``best_copy`` adopts it), else a new copy of
    the best point's checkpoint when it is still in the run folder. When neither is possible
    the earlier points are left out: a new point compared with a best that has no file could
    never become the best itself."""
    points = earlier_points(run_dir, start_step)
    best = pick(points)
    if best is None:
        return TakenOver(points=points)  # nothing scored: nothing to beat, no copy to keep
    named = (points[-1].get("best") or {}) if isinstance(points[-1].get("best"), dict) else {}
    if named.get("step") == best["step"] and isinstance(named.get("path"), str) \
            and best_copy.adopt(named["path"]):
        return TakenOver(points=points, best=best, path=best_copy.path)
    try:
        path = best_copy.update(run_dir / str(best.get("checkpoint")))
    except (OSError, InputError) as exc:
        return TakenOver(note=f"the earlier sessions' best point (step {best['step']}) has no "
                              f"best copy or checkpoint any more ({one_line(exc)}); the best is "
                              "chosen among this session's points")
    return TakenOver(points=points, best=best, path=path)
