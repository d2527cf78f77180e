"""Delete leakage: how often does the fine-tuned model draw what the user deleted?

Each leakage image was generated for one deleted concept, from a prompt where the concept
would be likely without naming it. The image leaks when the detector finds the concept there;
when the concept has reference boxes and an image encoder is given, only detections that look
like the references count (RefFilter, detection/ref_filter.py), so "never his necklace" is not
failed by any necklace at all.

    concept score = leaked images / leakage images of the concept   (lower is better)
    score         = mean over deleted concepts
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ..detection.ref_filter import FilterSettings, filter_by_references
from ..detection.types import Detection, Detections
from ..intent.schema import Concept, Granularity, Intent, Operation
from ..runtime import get_runtime
from .common import (
    COSINE,
    COUNT,
    UNIT,
    check_item_concepts,
    check_settings,
    mean,
    model_name,
    no_images_reason,
    select,
)
from .finding import boxed, by_concept, detect_named
from .types import ConceptResult, ImageRecord, MetricResult, Test

log = logging.getLogger(__name__)

WHOLE_IMAGE = "whole-image quality: it has no box to detect, so its leakage is not measured"


@dataclass(frozen=True)
class LeakageSettings:
    box_threshold: float = 0.3  # detector confidence a box needs to count as a leak
    reference_threshold: float = 0.75  # cosine to a reference a detection needs (RefFilter's)
    batch_size: int = 32  # crops per encoder call

    def __post_init__(self) -> None:
        check_settings(self, box_threshold=UNIT, reference_threshold=COSINE, batch_size=COUNT)


def leakage_score(generated: Sequence, intent: Intent, detector, image_encoder=None,
                  settings: LeakageSettings | None = None) -> MetricResult:
    """Score the leakage images of ``generated`` (`pairing.Generated`; the other tests'
    images are ignored) for the deleted concepts of ``intent``.

    ``detector``: a loaded detector; ``image_encoder``: optional (``embed_images``), compares
    detections with the concepts' reference crops. An image generated for no particular
    concept (``item.concept`` None) is checked for every deleted concept.
    """
    settings = settings or LeakageSettings()
    deleted = intent.by_operation(Operation.DELETE)
    located = boxed(deleted)
    whole = [ConceptResult(concept=c.name, applicable=False, reason=WHOLE_IMAGE)
             for c in deleted if c.granularity is Granularity.IMAGERY]
    if not located:
        return MetricResult.not_applicable(
            Test.LEAKAGE, "the intent deletes no concept that can be located",
            higher_is_better=False, concepts=whole)
    images = select(generated, Test.LEAKAGE)
    if not images:
        return MetricResult.not_applicable(Test.LEAKAGE, no_images_reason(Test.LEAKAGE),
                                           higher_is_better=False, concepts=whole)
    check_item_concepts(images, [c.name for c in deleted], Test.LEAKAGE)

    pils = [g.image for g in images]
    detections = detect_named(pils, intent, located, detector, settings.box_threshold)
    filtered, note, warnings = _filter(pils, detections, intent, located, image_encoder,
                                       settings)
    found = by_concept(filtered, [c.name for c in located])
    records = [_record(g, c.name, found[i][c.name])
               for i, g in enumerate(images) for c in located if _checks(g, c)]
    concepts = [_concept_result(c, records) for c in located] + whole
    models = {"detector": model_name(detector)}
    if note:
        models["reference_encoder"] = model_name(image_encoder)

    measured = [r for r in concepts if r.applicable]
    result = {"higher_is_better": False, "concepts": concepts, "records": records,
              "models": models, "warnings": warnings}
    if not measured:
        return MetricResult.not_applicable(
            Test.LEAKAGE, "no deleted concept has leakage images", **result)
    return MetricResult(
        metric=Test.LEAKAGE, applicable=True, score=mean([r.score for r in measured]),
        formula=("score = mean over deleted concepts of the share of their leakage images in "
                 f"which the detector found them (lower is better){note}"),
        parts={r.concept: r.score for r in measured}, **result)


def _checks(g, concept: Concept) -> bool:
    """Whether image ``g`` is checked for ``concept``: the concept it was generated for."""
    return g.item.concept is None or g.item.concept == concept.name


def _filter(pils, detections: Detections, intent: Intent, concepts: list[Concept],
            encoder, settings: LeakageSettings) -> tuple[Detections, str, list[str]]:
    """The detections, filtered by the reference crops when that is possible, with the
    formula's note on it and the warnings (RefFilter's own, which it logs, or why it could
    not filter: no encoder, or an intent without crops)."""
    referenced = {c.name: c.all_references() for c in concepts if c.all_references()}
    if not referenced:
        return detections, "", []
    if encoder is None:
        which = "; ".join(f"'{name}' has reference box(es) {', '.join(f'[{n}]' for n in refs)}"
                          for name, refs in referenced.items())
        warning = (f"{which}, but no image encoder is connected: every detection counts as a "
                   "leak, not only those that look like the references. Connect an image "
                   "encoder (Load Image Encoder, CLIP) as image_encoder to compare detections "
                   "with the reference crops.")
        log.warning("DeleteLeakage: %s", warning)
        return detections, "", [warning]
    missing = intent.missing_crops()
    if missing:
        warning = (f"The intent has no crops for reference box(es) {missing} (it was saved "
                   "without crops): every detection counts as a leak. Re-run Intent Parse with "
                   "the reference images to compare detections with them.")
        log.warning("DeleteLeakage: %s", warning)
        return detections, "", [warning]
    get_runtime().check_interrupted()
    filtered = filter_by_references(
        pils, detections, intent, encoder,
        FilterSettings(threshold=settings.reference_threshold, batch_size=settings.batch_size))
    note = (f"; a detection of a concept with reference boxes counts only with cosine >= "
            f"{settings.reference_threshold:g} to one of them")
    return filtered, note, filtered.warnings[len(detections.warnings):]


def _record(g, name: str, detections: list[Detection]) -> ImageRecord:
    """Image ``g`` for concept ``name``: the most similar kept detection (best score when
    unfiltered) is the one shown."""
    best = max(detections, key=lambda d: (d.similarity or 0.0, d.score), default=None)
    return ImageRecord(item=g.item.id, image=g.index, concept=name, found=best is not None,
                       box=best.box if best else None,
                       similarity=best.similarity if best else None)


def _concept_result(concept: Concept, records: list[ImageRecord]) -> ConceptResult:
    mine = [r for r in records if r.concept == concept.name]
    if not mine:
        return ConceptResult(concept=concept.name, applicable=False,
                             reason="no leakage image was generated for it")
    rate = sum(bool(r.found) for r in mine) / len(mine)
    return ConceptResult(concept=concept.name, images=len(mine), detection_rate=rate,
                         score=rate)
