"""The trainer's side of its observer (`observer.TrainObserver`) and of the caller's ``on_step``:
which process calls what, when a sample point is due, and the rule that a run which started
always ends, whatever ends it.

Every process of a run takes part in the same sample points (each saves the step's checkpoint
with the others, only the main one writes it), so the main process's observer decides them and
its choice is shared once, when the hooks are made; every other hook runs on the main process
only. ``on_step`` keeps running on every process, as it always has.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..runtime import get_runtime
from .observer import CheckpointPoint, EndStatus, RunEnd, RunStart, TrainObserver

if TYPE_CHECKING:
    from ..families.sd_model import BaseModel
    from .config import TrainConfig
    from .distributed import Distributed
    from .loop import StepInfo
    from .run_folder import RunFolder

log = logging.getLogger(__name__)


class RunHooks:
    """One run's calls into ``observer`` (None: observes nothing) and ``on_step``. Made by
    every process at the same point of `trainer.train` (its constructor is collective)."""

    def __init__(self, observer: TrainObserver | None, dist: Distributed,
                 on_step: Callable[[StepInfo], None] | None = None):
        self.observer = observer if observer is not None else TrainObserver()
        self.main = dist.is_main
        self.on_step = on_step
        samples = bool(self.observer.samples)
        every = int(self.observer.sample_every_steps) if samples else 0
        self.samples, self.every = dist.broadcast((samples, max(every, 0)))
        self.started = False
        self.ended = False

    def start(self, folder: RunFolder, total_steps: int, start_step: int, config: TrainConfig,
              training_set: Any) -> None:
        """The run is set up (its folder, config.json and metrics history are written)."""
        self.started = True
        if self.main:
            self.observer.run_started(RunStart(
                run_name=folder.name, run_dir=folder.run_dir, lora_path=folder.lora_path,
                total_steps=total_steps, start_step=start_step, config=config,
                training_set=training_set))

    def step(self, info: StepInfo) -> None:
        if self.on_step is not None:
            self.on_step(info)
        if self.main:
            self.observer.step_finished(info)

    def sample_due(self, step: int, total_steps: int) -> bool:
        """Whether ``step`` (not the last: the final file is that point) is a sample point."""
        return bool(self.every) and step % self.every == 0 and step < total_steps

    def point(self, step: int, path: Path, model: BaseModel, final: bool,
              save_seconds: float = 0.0) -> None:
        """``path`` (this step's checkpoint, or the final file) is on disk: sample it.
        ``save_seconds``: what saving ``path`` took when it was saved only for this point."""
        if self.samples and self.main:
            self.observer.checkpoint_ready(CheckpointPoint(step=step, path=path, model=model,
                                                           final=final,
                                                           save_seconds=save_seconds))

    def stop_requested(self) -> bool:
        """The observer's answer (asked on the main process; the loop shares it)."""
        return bool(self.observer.stop_requested()) if self.main else False

    def end(self, status: EndStatus, step: int, lora_path: Path | None, error: str = "") -> None:
        """``run_ended``, once, and only for a run that started (bad inputs refused before
        the run folder existed end nothing)."""
        if not self.started or self.ended:
            return
        self.ended = True
        if self.main:
            self.observer.run_ended(RunEnd(status=status, step=step, lora_path=lora_path,
                                           error=error))

    def fail(self, exc: BaseException, step: int) -> None:
        """End the run for ``exc`` (the user's Cancel, or a failure) without masking it: an
        observer that fails here is logged, and ``exc`` goes on."""
        status: EndStatus = "cancelled" if is_cancel(exc) else "failed"
        try:
            self.end(status, step, None, error=one_line(exc))
        except Exception:  # noqa: BLE001 - the run's own error is the one to report
            log.exception("the training observer failed while the run ended %s", status)


def is_cancel(exc: BaseException) -> bool:
    """The runtime's judgement (ComfyUI's Cancel, Ctrl-C); a host runtime without
    ``is_cancel`` counts Ctrl-C only."""
    check = getattr(get_runtime(), "is_cancel", None)
    return bool(check(exc)) if check is not None else isinstance(exc, KeyboardInterrupt)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
