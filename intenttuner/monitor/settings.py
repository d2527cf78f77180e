"""The monitor's settings (one frozen object, checked when made) and what a Training Monitor
node hands LoRA Train: the intent, the scoring models and the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..evaluation.evaluate import EvalModels
from ..evaluation.prompts import MAX_PROMPTS_PER_TEST
from ..intent.schema import Intent

MAX_SAMPLE_STEPS = 200
MAX_SAMPLE_SIZE = 2048


@dataclass(frozen=True)
class MonitorSettings:
    # Steps between sample points (each point: a checkpoint, its samples and scores); 0: only
    # at the end of the run. With prompts_per_test this is the cost/detail trade-off.
    sample_every_steps: int = 100
    prompts_per_test: int = 1  # evaluation contexts per test (and per modified value), one seed each
    sample_steps: int = 20  # denoising steps per sample (diffusers' default scheduler of the model)
    guidance_scale: float = 7.5
    sample_size: int = 0  # px, square, a multiple of 8; 0: the run's training resolution
    batch_size: int = 4  # images per pipeline call
    seed: int = 0  # the plan's base seed: the same seeds at every point
    # The best checkpoint maximises the weighted mean of the applicable metrics, leakage
    # counting as (1 - leakage); a weight of 0 leaves a metric out.
    stability_weight: float = 1.0
    controllability_weight: float = 1.0
    leakage_weight: float = 1.0
    box_threshold: float = 0.3  # detector confidence for every metric's boxes
    quality_weight: float = 0.2  # stability's quality share (when a quality scorer is given)

    def __post_init__(self) -> None:
        _count("sample_every_steps", self.sample_every_steps, 0, 10**9)
        _count("prompts_per_test", self.prompts_per_test, 1, MAX_PROMPTS_PER_TEST)
        _count("sample_steps", self.sample_steps, 1, MAX_SAMPLE_STEPS)
        _count("batch_size", self.batch_size, 1, 64)
        _count("seed", self.seed, 0, 2**64 - 1)
        _count("sample_size", self.sample_size, 0, MAX_SAMPLE_SIZE)
        if self.sample_size % 8:
            raise InputError(f"sample_size {self.sample_size} must be a multiple of 8 (or 0 for "
                             "the training resolution).")
        for name in ("guidance_scale", "stability_weight", "controllability_weight",
                     "leakage_weight", "box_threshold", "quality_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value != value or value < 0:
                raise InputError(f"{name} must be a number >= 0, got {value!r}.")
        for name in ("box_threshold", "quality_weight"):
            if getattr(self, name) > 1:
                raise InputError(f"{name} must be between 0 and 1, got {getattr(self, name)}.")
        if not (self.stability_weight or self.controllability_weight or self.leakage_weight):
            raise InputError("At least one of stability_weight, controllability_weight and "
                             "leakage_weight must be above 0: the best checkpoint is chosen "
                             "by their weighted mean.")

    @property
    def weights(self) -> dict[str, float]:
        """Metric name (evaluation.types.Test value) -> weight."""
        return {"stability": float(self.stability_weight),
                "controllability": float(self.controllability_weight),
                "leakage": float(self.leakage_weight)}


@dataclass
class MonitorSpec:
    """What the Training Monitor node outputs (IT_MONITOR) and the CLI builds: enough to sample
    and score a run. ``reference_images``: PIL images the stability references may come from
    (None: the training set's original images)."""

    intent: Intent
    models: EvalModels
    settings: MonitorSettings = field(default_factory=MonitorSettings)
    reference_images: Any = None


def _count(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{name} must be a whole number from {low} to {high}, got {value!r}.")
