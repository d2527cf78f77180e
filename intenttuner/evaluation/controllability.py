"""ControllabilityScore: does text still control what the user wants to modify?

Each controllability image was prompted with one value of a modified concept ("red hair").
For every other value of that concept ("blue hair") CLIP makes a two-way choice: is the image
(the concept's crop when a detector finds it, else the whole image) closer to the text
"a photo of red hair" or to "a photo of blue hair"?

    correct = cos(image, target text) > cos(image, other text)   (a tie is wrong)
    margin  = cos(image, target text) - cos(image, other text)

One direction per ordered pair (red -> blue and blue -> red): its accuracy and mean margin.
A concept's balanced accuracy is the mean of its directions' accuracies, so a model that
always draws red hair scores 0.5 on {red, blue}, not the share of red prompts; the score is
the mean over concepts, so a concept with three values (six directions) weighs no more than
one with two. The mean margin is averaged the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..errors import InputError
from ..intent.schema import Concept, Granularity, Intent, Operation
from ..runtime import get_runtime
from .common import (
    COUNT,
    UNIT,
    check_item_concepts,
    check_settings,
    mean,
    model_name,
    never_found_warning,
    no_images_reason,
    select,
)
from .finding import boxed, crop_box, find_concepts
from .types import ConceptResult, ImageRecord, MetricResult, Test

log = logging.getLogger(__name__)

NO_VALUES = ("it has no values to switch between: name two or more in the intent (e.g. "
             "'between black hair and blonde hair')")


@dataclass(frozen=True)
class ControlSettings:
    box_threshold: float = 0.3  # detector confidence a box needs for its crop to be used
    crop_margin: float = 0.1  # the crop grows by this share of the box on each side (context)
    template: str = "a photo of {}"  # the text each value is embedded in ("{}": the value)
    batch_size: int = 32  # images per encoder call

    def __post_init__(self) -> None:
        check_settings(self, box_threshold=UNIT, crop_margin=UNIT, batch_size=COUNT)
        if self.template.count("{}") != 1:
            raise InputError(f"template must hold '{{}}' once, where the value goes, got "
                             f"'{self.template}' (e.g. 'a photo of {{}}').")


def controllability_score(generated: Sequence, intent: Intent, clip_encoder, detector=None,
                          settings: ControlSettings | None = None) -> MetricResult:
    """Score the controllability images of ``generated`` (`pairing.Generated`; the other
    tests' images are ignored) for the modified concepts of ``intent``.

    ``clip_encoder``: an image/text encoder (``embed_images`` and ``embed_texts``, unit
    vectors); ``detector``: optional, to classify the concept's crop instead of the whole image.
    """
    settings = settings or ControlSettings()
    modified = intent.by_operation(Operation.MODIFY)
    testable = [c for c in modified if len(c.values) >= 2]
    untestable = [ConceptResult(concept=c.name, applicable=False, reason=NO_VALUES)
                  for c in modified if len(c.values) < 2]
    if not testable:
        return MetricResult.not_applicable(
            Test.CONTROLLABILITY, "the intent modifies no concept with two or more values",
            concepts=untestable)
    images = select(generated, Test.CONTROLLABILITY)
    if not images:
        return MetricResult.not_applicable(Test.CONTROLLABILITY,
                                           no_images_reason(Test.CONTROLLABILITY),
                                           concepts=untestable)
    _check_clip(clip_encoder)
    by_name = {c.name: c for c in testable}
    check_item_concepts(images, list(by_name), Test.CONTROLLABILITY)
    _check_item_values(images, by_name)

    crops, boxes, warnings = _crops(images, intent, by_name, detector, settings)
    texts = {v.text: settings.template.format(v.text) for c in testable for v in c.values}
    get_runtime().check_interrupted()
    text_vectors = dict(zip(texts, clip_encoder.embed_texts(list(texts.values())), strict=True))
    image_vectors = clip_encoder.embed_images(crops, batch_size=settings.batch_size)

    records = []
    for g, box, vector in zip(images, boxes, image_vectors, strict=True):
        concept = by_name[g.item.concept]
        for other in (v.text for v in concept.values if v.text != g.item.value):
            records.append(_choose(g, box, vector, text_vectors, other, detector, concept))
    directions = [_direction(c.name, v.text, w.text, records)
                  for c in testable for v in c.values for w in c.values if v is not w]
    models = {"clip": model_name(clip_encoder),
              "detector": model_name(detector) if detector is not None else "none (whole images)"}
    for warning in warnings:
        log.warning("ControllabilityScore: %s", warning)

    result = {"concepts": directions + untestable, "records": records, "models": models,
              "warnings": warnings}
    per_concept = {c.name: [d for d in directions if d.concept == c.name and d.applicable]
                   for c in testable}
    per_concept = {name: measured for name, measured in per_concept.items() if measured}
    if not per_concept:
        return MetricResult.not_applicable(
            Test.CONTROLLABILITY, "no modified value has controllability images", **result)
    balanced = {name: mean([d.accuracy for d in measured])
                for name, measured in per_concept.items()}
    accuracy = mean(list(balanced.values()))
    margin = mean([mean([d.mean_margin for d in measured]) for measured in per_concept.values()])
    return MetricResult(
        metric=Test.CONTROLLABILITY, applicable=True, score=accuracy,
        formula=(f"score = balanced_accuracy = mean over the {len(balanced)} modified "
                 "concept(s) of the concept's balanced accuracy, the mean over its directions "
                 "(value prompted vs another value of it) of the share of images CLIP places "
                 f"closer to '{settings.template}' of the prompted value; mean_margin = mean "
                 "over concepts of the mean over their directions of cos(target) - cos(other)"),
        parts={"balanced_accuracy": accuracy, "mean_margin": margin, **balanced}, **result)


def _check_clip(clip_encoder) -> None:
    if clip_encoder is None:
        raise InputError("ControllabilityScore needs a CLIP image/text encoder (Load Image "
                         "Encoder, CLIP) to classify the controllability images: none was "
                         "given.")
    if not callable(getattr(clip_encoder, "embed_texts", None)):
        raise InputError(f"ControllabilityScore needs a CLIP image/text encoder (Load Image "
                         f"Encoder), not DINO: {model_name(clip_encoder)} cannot embed the "
                         "value texts.")


def _check_item_values(images: Sequence, by_name: dict[str, Concept]) -> None:
    for g in images:
        if g.item.concept is None or g.item.value is None:
            raise InputError(
                f"Image {g.index} ({g.item.id}) is a controllability image of no "
                f"{'modified concept' if g.item.concept is None else 'value'}: each one is "
                "prompted with one value of one modified concept, which its plan item names. "
                "Make the plan again from this intent with Evaluation Prompts.")
        values = [v.text for v in by_name[g.item.concept].values]
        if g.item.value not in values:
            raise InputError(
                f"Image {g.index} ({g.item.id}) was prompted with value '{g.item.value}' of "
                f"'{g.item.concept}', which is not one of its values in this intent "
                f"({', '.join(values) or 'none'}). Make the plan again from this intent.")


def _crops(images: Sequence, intent: Intent, by_name: dict[str, Concept], detector,
           settings: ControlSettings) -> tuple[list, list, list[str]]:
    """Per image: what CLIP classifies (the best box of its concept grown by the margin, else
    the whole image) and that box (None for the whole image); one detector pass."""
    pils = [g.image for g in images]
    located = boxed(by_name.values())
    if detector is None or not located:
        return pils, [None] * len(pils), []
    found = find_concepts(pils, intent, located, detector, settings.box_threshold)
    crops, boxes = [], []
    for g, pil, per_image in zip(images, pils, found, strict=True):
        detections = per_image.get(g.item.concept, [])
        boxes.append(detections[0].box if detections else None)
        crops.append(crop_box(pil, detections[0].box, settings.crop_margin) if detections
                     else pil)
    warnings = []
    for c in located:
        mine = [f[c.name] for g, f in zip(images, found, strict=True) if g.item.concept == c.name]
        if mine and not any(mine):
            warnings.append(never_found_warning(
                c, len(mine), Test.CONTROLLABILITY, settings.box_threshold,
                "whole images were classified instead of its crop"))
    return crops, boxes, warnings


def _choose(g, box, vector: torch.Tensor, text_vectors: dict[str, torch.Tensor], other: str,
            detector, concept: Concept) -> ImageRecord:
    """The two-way choice for image ``g`` between its value and ``other``."""
    target = g.item.value
    margin = float(vector @ text_vectors[target]) - float(vector @ text_vectors[other])
    correct = margin > 0
    searched = detector is not None and concept.granularity is not Granularity.IMAGERY
    return ImageRecord(item=g.item.id, image=g.index, concept=concept.name,
                       found=(box is not None) if searched else None, box=box,
                       target=target, other=other, predicted=target if correct else other,
                       margin=margin, correct=correct)


def _direction(concept: str, target: str, other: str, records: list[ImageRecord]
               ) -> ConceptResult:
    mine = [r for r in records if r.concept == concept and r.target == target
            and r.other == other]
    if not mine:
        return ConceptResult(concept=concept, target=target, other=other, applicable=False,
                             reason=f"no image was generated for '{target}'")
    accuracy = sum(r.correct for r in mine) / len(mine)
    return ConceptResult(concept=concept, target=target, other=other, images=len(mine),
                         accuracy=accuracy, mean_margin=mean([r.margin for r in mine]),
                         score=accuracy)
