"""Finding the intent's concepts again in generated images, and cropping what was found: the
detection the three metrics share (their other shared bookkeeping is in common.py).

The detector is asked for each concept's own phrase ("hair", not "red hair"): a metric asks
where the concept is, and a query worded by one value would favour the crops of that value.

    found = find_concepts(pils, intent, intent.by_operation(Operation.KEEP), detector)
    found[0]["face"]   # the kept detections of the face in image 0, best score first
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from ..detection.detect import DetectSettings, detect_concepts
from ..detection.types import Detection, Detections
from ..errors import InputError
from ..intent.schema import Concept, Granularity, Intent


def boxed(concepts: Sequence[Concept]) -> list[Concept]:
    """The concepts a detector can locate (imagery concepts are whole-image qualities)."""
    return [c for c in concepts if c.granularity is not Granularity.IMAGERY]


def _search_intent(intent: Intent, concepts: Sequence[Concept]) -> Intent:
    """An unvalidated copy of ``intent`` holding only ``concepts``, without their values, so
    `detect_concepts` asks for each concept's phrase alone (see the module docstring)."""
    return intent.model_copy(update={
        "concepts": [c.model_copy(update={"values": []}) for c in concepts]})


def detect_named(pils: Sequence[Image.Image], intent: Intent, concepts: Sequence[Concept],
                 detector, box_threshold: float = 0.3, text_threshold: float = 0.25
                 ) -> Detections:
    """One detector pass over ``pils`` for the boxable ``concepts`` of ``intent``."""
    settings = DetectSettings(box_threshold=box_threshold, text_threshold=text_threshold)
    return detect_concepts(pils, _search_intent(intent, boxed(concepts)), detector,
                           settings=settings)


def by_concept(detections: Detections, names: Sequence[str]) -> list[dict[str, list[Detection]]]:
    """Per image: concept name -> its kept detections, best score first (every name is a key,
    with an empty list where the concept was not found)."""
    out = []
    for i in range(len(detections.images)):
        kept = sorted(detections.kept(i), key=lambda d: -d.score)
        out.append({name: [d for d in kept if d.concept == name] for name in names})
    return out


def find_concepts(pils: Sequence[Image.Image], intent: Intent, concepts: Sequence[Concept],
                  detector, box_threshold: float = 0.3, text_threshold: float = 0.25
                  ) -> list[dict[str, list[Detection]]]:
    """Find ``concepts`` in every image of ``pils`` with one detector pass.

    Returns, per image, concept name -> kept detections sorted by score (highest first),
    boxes XYXY in that image's pixels. Imagery concepts are not searched and absent from the
    dicts; a searched concept that was not found maps to an empty list.
    """
    searched = boxed(concepts)
    if not searched:
        return [{} for _ in pils]
    detections = detect_named(pils, intent, searched, detector, box_threshold, text_threshold)
    return by_concept(detections, [c.name for c in searched])


def crop_box(pil: Image.Image, box: Sequence[float], margin: float = 0.0) -> Image.Image:
    """The crop of ``box`` (XYXY pixels) grown by ``margin`` x its width / height on each side,
    clamped to the image and at least one pixel wide and high."""
    if margin < 0:
        raise InputError(f"crop margin must be >= 0, got {margin}.")
    x1, y1, x2, y2 = (float(v) for v in box)
    grow_x, grow_y = (x2 - x1) * margin, (y2 - y1) * margin
    width, height = pil.size
    left = min(max(0, round(x1 - grow_x)), width - 1)
    top = min(max(0, round(y1 - grow_y)), height - 1)
    right = max(min(width, round(x2 + grow_x)), left + 1)
    bottom = max(min(height, round(y2 + grow_y)), top + 1)
    return pil.crop((left, top, right, bottom))
