"""The small bookkeeping the three metrics share: their images in a scored list, the names of
their models, the checks on what each image was generated for and on their settings, and the
warning for a concept never found (finding.py holds the detection and cropping they share).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InputError
from ..intent.schema import Concept
from .types import Test


@dataclass(frozen=True)
class Range:
    """The values a numeric setting may take: [low, high], or >= low when high is None."""

    low: float
    high: float | None = None
    what: str = ""  # what the setting is, said in the message: " (a cosine similarity)"


UNIT = Range(0.0, 1.0)  # thresholds, weights, margins: shares of something
COUNT = Range(1)  # batch sizes, box counts
COSINE = Range(-1.0, 1.0, " (a cosine similarity)")


def check_settings(settings, **ranges: Range) -> None:
    """Refuse the first attribute of ``settings`` named in ``ranges`` whose value lies outside
    its range (NaN too): ``check_settings(self, box_threshold=UNIT, batch_size=COUNT)``."""
    for name, allowed in ranges.items():
        value = getattr(settings, name)
        if allowed.low <= value and (allowed.high is None or value <= allowed.high):
            continue
        bound = (f"at least {allowed.low:g}" if allowed.high is None
                 else f"between {allowed.low:g} and {allowed.high:g}")
        raise InputError(f"{name}{allowed.what} must be {bound}, got {value}.")


def select(generated: Sequence, test: Test) -> list:
    """The generated images of ``test`` (`pairing.Generated`), in image-list order."""
    return [g for g in generated if g.item.test is test]


def no_images_reason(test: Test) -> str:
    return f"the plan has no {test.value} prompts"


def check_item_concepts(images: Sequence, allowed: Sequence[str], test: Test) -> None:
    """Refuse images generated for a concept this metric does not measure: the plan was made
    from another version of the intent (pairing.check_intent catches most such cases)."""
    for g in images:
        if g.item.concept is not None and g.item.concept not in allowed:
            raise InputError(
                f"Image {g.index} ({g.item.id}) tests '{g.item.concept}', which is not a "
                f"{test.value} concept of this intent ({', '.join(allowed) or 'none'}). Make "
                "the plan again from this intent with Evaluation Prompts.")


def model_name(model) -> str:
    """A short name of a loaded model for `MetricResult.models`."""
    for attribute in ("arch", "name"):
        value = getattr(model, attribute, None)
        if isinstance(value, str) and value:
            return value
    source = getattr(model, "source", None)
    if source is not None:
        return getattr(source, "name", str(source))
    return type(model).__name__


def mean(values: Sequence[float]) -> float | None:
    """The arithmetic mean, None for no values (never a 0 that would read as a result)."""
    return math.fsum(values) / len(values) if values else None


def never_found_warning(concept: Concept, images: int, test: Test, box_threshold: float,
                        consequence: str) -> str:
    advice = (f"Lower box_threshold ({box_threshold:g}) or describe it differently in the "
              "intent." if box_threshold > 0 else "The detector proposed no box for it even at "
              "box_threshold 0: describe it differently in the intent.")
    return (f"'{concept.name}' (looked for as '{concept.phrase}') was not found in any of the "
            f"{images} {test.value} image(s): {consequence}. {advice}")
