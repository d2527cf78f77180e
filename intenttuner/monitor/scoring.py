"""What a sample point measures and how it is written down: the plan of the intent (which
metrics and concepts it can test), the references stability compares with, the evaluation
library's three metrics under the monitor's settings, and their results as the SAMPLE event's
``scores`` (metric -> applicable, score, score per concept)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import InputError
from ..evaluation.controllability import ControlSettings
from ..evaluation.evaluate import evaluate
from ..evaluation.leakage import LeakageSettings
from ..evaluation.pairing import Generated
from ..evaluation.prompts import PlanSettings, build_plan
from ..evaluation.stability import StabilitySettings
from ..evaluation.types import EvalPlan, EvalScores, MetricResult, Test
from ..intent.schema import Operation
from .best import METRICS
from .settings import MonitorSpec

log = logging.getLogger(__name__)

MAX_REFERENCES = 8  # training images stability takes its references from, by default
ScoreFn = Callable[[list[Generated], str], EvalScores]


def plan_of(spec: MonitorSpec) -> tuple[EvalPlan | None, list[str]]:
    """The evaluation plan of ``spec`` (one seed per prompt: every point uses the same
    prompts and seeds) and its notes; (None, [why]) when the intent has nothing to test, and
    the run is then monitored by its loss only."""
    settings = spec.settings
    try:
        plan = build_plan(spec.intent, PlanSettings(prompts_per_test=settings.prompts_per_test,
                                                    images_per_prompt=1, seed=settings.seed))
    except InputError as exc:
        return None, [f"loss only: {exc}"]
    return plan, list(plan.notes)


def plan_summary(spec: MonitorSpec, plan: EvalPlan) -> tuple[list[str], dict[str, list[str]]]:
    """The metrics ``plan`` can measure (in METRICS order) and their concepts: the kept ones
    (stability checks them all in every image), the modified and deleted ones it prompts."""
    tests = {item.test.value for item in plan.items}
    metrics = [m for m in METRICS if m in tests]
    concepts: dict[str, list[str]] = {}
    for metric in metrics:
        if metric == Test.STABILITY.value:
            names = [c.name for c in spec.intent.by_operation(Operation.KEEP)]
        else:
            names = list(dict.fromkeys(item.concept for item in plan.items
                                       if item.test.value == metric and item.concept))
        concepts[metric] = names
    return metrics, concepts


def training_references(training_set: Any, limit: int = MAX_REFERENCES) -> list[Image.Image]:
    """Up to ``limit`` of the set's original images (its 'original' group; a set made
    elsewhere has none: its first images then), as RGB; unreadable files are skipped."""
    items = list(getattr(training_set, "items", []) or [])
    originals = [item for item in items if item.group == "original"] or items
    root = Path(getattr(training_set, "root", "") or ".")
    images = []
    for item in originals[:limit]:
        try:
            with Image.open(root / item.image) as image:
                images.append(image.convert("RGB"))
        except OSError as exc:
            log.warning("reference image %s not used: %s", item.image, exc)
    return images


def scorer(spec: MonitorSpec, references: Sequence[Image.Image] | None) -> ScoreFn:
    """The three metrics of the evaluation library with the monitor's detector threshold and
    quality share, every point compared with the same ``references``."""
    settings = spec.settings

    def score(generated: list[Generated], label: str) -> EvalScores:
        return evaluate(
            generated, spec.intent, spec.models, label, reference_images=references,
            stability=StabilitySettings(box_threshold=settings.box_threshold,
                                        quality_weight=settings.quality_weight),
            controllability=ControlSettings(box_threshold=settings.box_threshold),
            leakage=LeakageSettings(box_threshold=settings.box_threshold))

    return score


def scores_payload(scores: EvalScores) -> dict[str, dict[str, Any]]:
    """SAMPLE's ``scores``: per metric {applicable, score, concepts: {name: score}}. A
    controllability concept scores the mean of its directions ("black vs blonde" and back)."""
    return {metric: _metric_payload(result) for metric, result in scores.results.items()}


def _metric_payload(result: MetricResult) -> dict[str, Any]:
    by_name: dict[str, list[float]] = {}
    for concept in result.concepts:
        values = by_name.setdefault(concept.concept, [])
        if concept.applicable and concept.score is not None:
            values.append(float(concept.score))
    concepts = {name: (sum(v) / len(v) if v else None) for name, v in by_name.items()}
    score = float(result.score) if result.applicable and result.score is not None else None
    return {"applicable": bool(result.applicable), "score": score,
            "concepts": concepts}


def warnings_of(scores: EvalScores) -> list[str]:
    return [f"{metric}: {w}" for metric, result in scores.results.items()
            for w in result.warnings]


def claim_step_dir(samples_dir: Path, step: int) -> Path:
    """A new folder for the images of ``step``: ``step000010``, or ``step000010-2``... when a
    resumed run samples a step again (the earlier images stay)."""
    samples_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        folder = samples_dir / (f"step{step:06d}" + ("" if n == 1 else f"-{n}"))
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise InputError(f"No free sample folder for step {step} in {samples_dir}; remove old ones.")

