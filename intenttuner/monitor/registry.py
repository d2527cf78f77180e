"""The runs training in this process right now, and their Stop buttons.

The monitor registers its run when training starts and unregisters it when it ends; the HTTP
API (another thread: ComfyUI's server) lists the runs and asks one to stop. A stop is only a
flag: the trainer reads it between steps (``TrainObserver.stop_requested``) and ends the run
like its last step would, so the best checkpoint is kept. Everything here is thread-safe.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError


@dataclass
class ActiveRun:
    run: str
    run_dir: Path
    node: str | None        # the ComfyUI node id training it; None headless
    prompt_id: str | None   # the ComfyUI prompt (queue entry) it runs in
    total_steps: int
    started: float = field(default_factory=time.time)  # unix seconds
    step: int = 0           # optimizer steps done; set by `update` from the training thread
    stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def update(self, step: int) -> None:
        # A plain int assignment: atomic for the readers on other threads, no lock needed.
        self.step = step

    @property
    def stopping(self) -> bool:
        return self.stop.is_set()


_lock = threading.Lock()
_runs: dict[str, ActiveRun] = {}


def register(run: str, run_dir: str | Path, node: str | None, prompt_id: str | None,
             total_steps: int) -> ActiveRun:
    """Add a starting run. Run names are unique (each run claims its own folder), so a name
    already here means that run has not ended yet: refused rather than replaced."""
    entry = ActiveRun(run, Path(run_dir), node, prompt_id, total_steps)
    with _lock:
        if run in _runs:
            raise InputError(f"Run {run!r} is already training in this process; wait for it "
                             "to end (or stop it) before starting it again.")
        _runs[run] = entry
    return entry


def unregister(run: str) -> None:
    """Remove an ended run (nothing happens when it is not registered: ending twice is fine)."""
    with _lock:
        _runs.pop(run, None)


def get(run: str) -> ActiveRun | None:
    with _lock:
        return _runs.get(run)


def active() -> list[ActiveRun]:
    """The runs training now, the newest first."""
    with _lock:
        runs = list(_runs.values())
    return sorted(runs, key=lambda r: r.started, reverse=True)


def request_stop(run: str) -> ActiveRun:
    """Ask ``run`` to stop after its current step and keep its best checkpoint."""
    entry = get(run)
    if entry is None:
        running = ", ".join(r.run for r in active()) or "none"
        raise InputError(f"Run {run!r} is not training now, so it cannot be stopped (runs "
                         f"training: {running}).")
    entry.stop.set()
    return entry
