"""What the trainer tells an observer of a run (the training monitor, a test), and the one
question it asks it: whether to stop.

The trainer calls every hook on the main process only, in this order:

    run_started -> (step_finished, [checkpoint_ready every sample_every_steps])... ->
    [checkpoint_ready(final=True)] -> run_ended

(no final ``checkpoint_ready`` for a run stopped before its first step: nothing was trained).

``stop_requested`` is asked between steps (the main process's answer is shared with the
others); a stop ends the run like its last step would: the final LoRA file of the steps done,
the final ``checkpoint_ready``, ``run_ended(status="stopped")``. Cancel and errors end with
``run_ended(status="cancelled" / "failed")`` before the exception goes on; inputs refused
before the run folder is set up (``run_started``) end nothing. The base class
observes nothing, so the trainer needs no special case for "no observer".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ..families.sd_model import BaseModel
    from .config import TrainConfig
    from .loop import StepInfo

EndStatus = Literal["finished", "stopped", "cancelled", "failed"]


@dataclass(frozen=True)
class RunStart:
    run_name: str
    run_dir: Path          # models/loras/<run>/ (config.json, metrics.jsonl, checkpoints)
    lora_path: Path        # models/loras/<run>.safetensors, the final file (not written yet)
    total_steps: int
    start_step: int        # > 0 when resumed from a checkpoint
    config: TrainConfig
    training_set: Any      # the dataset.kohya_read.TrainingSet being trained on


@dataclass(frozen=True)
class CheckpointPoint:
    step: int
    path: Path             # this step's checkpoint file (final: the run's LoRA file)
    model: BaseModel       # the base model with the in-training LoRA active, on its devices
    final: bool            # the last point of the run (finished or stopped)
    # Seconds the trainer spent saving ``path`` only because this is a sample point (0 when
    # save_every_steps saved it anyway): monitoring's cost, which the observer counts.
    save_seconds: float = 0.0


@dataclass(frozen=True)
class RunEnd:
    status: EndStatus
    step: int              # optimizer steps done
    lora_path: Path | None  # the final file; None when cancelled or failed
    error: str = ""        # failed / cancelled: what happened, in one line


class TrainObserver:
    """Observes nothing; subclasses override what they need."""

    # Steps between checkpoint_ready calls during the run (0: only the final one); the trainer
    # makes sure a checkpoint of each such step is on disk before the call.
    sample_every_steps: int = 0
    # Whether checkpoint_ready is wanted at all (False: no sampling, no extra checkpoints).
    samples: bool = False

    def run_started(self, start: RunStart) -> None:
        return None

    def step_finished(self, info: StepInfo) -> None:
        return None

    def checkpoint_ready(self, point: CheckpointPoint) -> None:
        return None

    def stop_requested(self) -> bool:
        return False

    def run_ended(self, end: RunEnd) -> None:
        return None
