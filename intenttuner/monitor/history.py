"""Runs on disk and what happened in them, read back from their metrics.jsonl.

A run folder is ``<loras dir>/<run>/`` with a metrics.jsonl; runs trained before the monitor
existed have step records only and read as loss-only histories. What is training right now is
the registry's business (`registry`); `api` puts the two together.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..training.run_folder import METRICS_FILE, PATH_PARTS
from .events import END, PREFIX, START, STEP, short
from .runlog import is_step, read_records

STATUSES = ("running", "finished", "stopped", "cancelled", "failed", "unknown")


def check_run_name(run: object) -> str:
    """``run`` if it is a plain run name (a folder in the LoRA folder, never a path)."""
    if not isinstance(run, str) or not run.strip():
        raise InputError(f"run must be the name of a training run (a folder in models/loras), "
                         f"got {run!r}.")
    if any(bad in run for bad in PATH_PARTS) or run.startswith("."):
        raise InputError(f"run {run!r} must be a plain run name (no '/', '\\', '..', ':' or "
                         "leading '.'): runs are only looked up in the LoRA folders.")
    return run


def find_run_dir(run: str, loras_dirs: Iterable[str | Path]) -> Path:
    """The folder of run ``run``: the first ``<loras dir>/<run>/`` holding a metrics.jsonl."""
    check_run_name(run)
    dirs = [Path(d) for d in loras_dirs]
    for loras in dirs:
        if (loras / run / METRICS_FILE).is_file():
            return loras / run
    where = ", ".join(map(str, dirs)) or "no LoRA folder"
    raise InputError(f"No training run named {run!r} in {where}; choose one of the runs the "
                     "run list shows.")


def list_runs(loras_dirs: Iterable[str | Path]) -> list[dict[str, Any]]:
    """A summary per run folder on disk (see `summary`), the newest first. A name found in two
    LoRA folders is the first folder's, as `find_run_dir` finds it."""
    seen: dict[str, dict[str, Any]] = {}
    for loras in (Path(d) for d in loras_dirs):
        if not loras.is_dir():
            continue
        for metrics in sorted(loras.glob(f"*/{METRICS_FILE}")):
            name = metrics.parent.name
            if name in seen:
                continue
            try:
                seen[name] = summary(metrics.parent)
            except OSError:  # deleted while listing: it is no run any more
                continue
    return sorted(seen.values(), key=lambda run: run["started"] or 0.0, reverse=True)


# metrics.jsonl path -> ((mtime_ns, size), summary): the run list is asked for often (every
# panel refresh) and finished runs' files do not change; only a changed file is read again.
_cache: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}
_cache_lock = threading.Lock()


def summary(run_dir: str | Path) -> dict[str, Any]:
    """``{run, status, step, total_steps, node, prompt_id, started, best}`` of a run on disk.
    ``status`` is the last attempt's end status; "unknown" when it has none (its process
    died, or it is training in another process)."""
    run_dir = Path(run_dir)
    path = run_dir / METRICS_FILE
    stat = path.stat()
    key = (stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        cached = _cache.get(path)
    if cached and cached[0] == key:
        return dict(cached[1])
    result = _summarise(run_dir, read_records(run_dir), stat.st_mtime)
    with _cache_lock:
        _cache[path] = (key, result)
    return dict(result)


def _summarise(run_dir: Path, records: list[dict[str, Any]], mtime: float) -> dict[str, Any]:
    start, end = last_attempt(records)
    steps = [r for r in records if is_step(r)]
    step = end.get("step") if end else (steps[-1]["step"] if steps else 0)
    total = (start or {}).get("total_steps") or (steps[-1].get("total_steps") if steps else 0)
    return {"run": run_dir.name, "status": status(run_dir, start, end), "step": step,
            "total_steps": total, "node": (start or {}).get("node"),
            "prompt_id": (start or {}).get("prompt_id"),
            "started": (start or {}).get("time") or _folder_time(run_dir, mtime),
            "best": end.get("best") if end else None}


def last_attempt(records: list[dict[str, Any]]) -> tuple[dict | None, dict | None]:
    """The last start record and the end record after it (None when missing). A cancelled or
    failed run resumed into its own folder starts again after its first end."""
    start_at = max((i for i, r in enumerate(records) if r.get("event") == short(START)), default=-1)
    start = records[start_at] if start_at >= 0 else None
    end = next((r for r in reversed(records[start_at + 1:]) if r.get("event") == short(END)),
               None)
    return start, end


def status(run_dir: Path, start: dict | None, end: dict | None) -> str:
    if end is not None:
        value = end.get("status")
        return value if value in STATUSES else "unknown"
    if start is None and (run_dir.parent / f"{run_dir.name}.safetensors").is_file():
        return "finished"  # a run from before the monitor: its final LoRA file was written
    return "unknown"


def _folder_time(run_dir: Path, mtime: float) -> float:
    """When a run without a start record began: its config.json is written first."""
    try:
        return (run_dir / "config.json").stat().st_mtime
    except OSError:
        return mtime


def events(run_dir: str | Path) -> list[dict[str, Any]]:
    """The run's events in order, as the live panel receives them: ``[{"event":
    "intenttuner.train.start", "data": {...}}, ...]``. Step records become STEP events with the
    ``run`` and ``node`` of the start record before them (the folder's name and None before
    any, as in runs from before the monitor)."""
    run_dir = Path(run_dir)
    run, node = run_dir.name, None
    out = []
    for record in read_records(run_dir):
        if is_step(record):
            out.append({"event": STEP, "data": {"run": run, "node": node, **record}})
            continue
        name = record.get("event")
        if not isinstance(name, str) or not name:
            continue  # neither a step nor an event: nothing the panel could draw
        data = {k: v for k, v in record.items() if k != "event"}
        if PREFIX + name == START:
            run, node = data.get("run", run), data.get("node")
        out.append({"event": PREFIX + name, "data": data})
    return out

