"""All three metrics of one model at once, for the command line and the training monitor
(the score nodes call the metrics one by one, so a workflow can wire each apart).

    models = EvalModels(detector, identity_encoder=dino, clip=clip, quality=aesthetic)
    scores = evaluate(pair_images(plan, images), intent, models, label="step 1000")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from ..intent.schema import Intent
from .controllability import ControlSettings, controllability_score
from .leakage import LeakageSettings, leakage_score
from .stability import StabilitySettings, stability_score
from .types import EvalScores


@dataclass
class EvalModels:
    """The loaded models the metrics share; each is loaded once by the caller."""

    detector: Any  # detector family: finds the concepts again in generated images
    identity_encoder: Any  # DINO (or CLIP image) embeddings compared with the references
    clip: Any  # open_clip image/text encoder: controllability's two-way choice, and the
    # reference filter of delete leakage (RefFilter's threshold is set for CLIP embeddings)
    quality: Any = None  # optional human-preference scorer (the stability quality term)


def evaluate(generated: Sequence, intent: Intent, models: EvalModels, label: str,
             reference_images: Sequence[Image.Image] | None = None,
             stability: StabilitySettings | None = None,
             controllability: ControlSettings | None = None,
             leakage: LeakageSettings | None = None) -> EvalScores:
    """Stability, controllability and delete leakage of ``generated`` (`pairing.Generated`)
    under ``label``; a metric that does not apply to the intent or plan is included as not
    applicable, with its reason."""
    scores = EvalScores(label=label)
    for result in (
        stability_score(generated, intent, models.detector, models.identity_encoder,
                        models.quality, reference_images, stability),
        controllability_score(generated, intent, models.clip, models.detector, controllability),
        leakage_score(generated, intent, models.detector, models.clip, leakage),
    ):
        scores = scores.with_result(result)
    return scores
