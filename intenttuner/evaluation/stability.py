"""StabilityScore: does the fine-tuned model keep what the user keeps?

For every kept concept that can be located (a face, a jacket...), each stability image is
searched for it, the best boxes are cropped and embedded with the identity encoder, and the
best cosine similarity to the concept's references counts:

    concept score = mean over images of (similarity if found else 0)
                  = detection_rate x mean_similarity
    identity      = mean of the concept scores
    score         = (1 - w) x identity + w x quality     (identity alone without a scorer)

so an image where the concept is missing is a failure, not a gap. The references are the
intent's reference crops and, when the training images are given, the concept's best box in
each of them. Identity features: DINO ViT-S/16 CLS embeddings by default (families/
identity_encoder.py), the standard of subject fidelity (the DINO score of DreamBooth, Ruiz et
al. 2023): unlike CLIP's text-aligned features, self-supervised DINO features tell apart two
similar-looking subjects of the same class, which is what "keep his face" means. Any encoder
with ``embed_images`` works (CLIP-I too).

Whole-image kept qualities (lighting, style) have no box: they are judged by the quality term,
a human-preference predictor (the LAION aesthetic predictor, typical outputs 1..10, mapped to
[0, 1] as (aesthetic - 1) / 9).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from ..detection.ref_filter import reference_embeddings
from ..detection.types import Detection
from ..imageio import to_rgb_pil
from ..intent.schema import Concept, Granularity, Intent, Operation
from ..runtime import get_runtime
from .common import (
    COUNT,
    UNIT,
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

NO_REFERENCES = ("no reference crops: draw a box for it in Intent Parse or connect the training "
                 "images as reference_images")
WHOLE_IMAGE = "whole-image quality: judged by the quality term only"


@dataclass(frozen=True)
class StabilitySettings:
    box_threshold: float = 0.3  # detector confidence a box needs to count as found
    quality_weight: float = 0.2  # share of the quality term in the score (0: identity only)
    top_boxes: int = 3  # per image and concept, the best-scoring boxes compared (max of them)
    batch_size: int = 32  # crops per encoder call

    def __post_init__(self) -> None:
        check_settings(self, box_threshold=UNIT, quality_weight=UNIT, top_boxes=COUNT,
                       batch_size=COUNT)


def stability_score(generated: Sequence, intent: Intent, detector, identity_encoder,
                    quality_scorer=None, reference_images: Sequence[Image.Image] | None = None,
                    settings: StabilitySettings | None = None) -> MetricResult:
    """Score the stability images of ``generated`` (`pairing.Generated`, any test: the others
    are ignored) for the kept concepts of ``intent`` (see the module docstring).

    ``detector``: a loaded detector (``detect``); ``identity_encoder``: ``embed_images(pils,
    batch_size) -> (N, D)`` unit vectors; ``quality_scorer``: optional ``score_images(pils,
    batch_size) -> (N,)`` aesthetic scores; ``reference_images``: optional training images
    (PIL) whose detected concepts join the references.
    """
    settings = settings or StabilitySettings()
    kept = intent.by_operation(Operation.KEEP)
    located = boxed(kept)
    whole = [c for c in kept if c.granularity is Granularity.IMAGERY]
    if not located:
        what = (f"only whole-image qualities: {', '.join(c.name for c in whole)}" if whole
                else "it keeps nothing")
        return MetricResult.not_applicable(
            Test.STABILITY, f"the intent keeps no concept that can be located ({what})")
    images = select(generated, Test.STABILITY)
    if not images:
        return MetricResult.not_applicable(Test.STABILITY, no_images_reason(Test.STABILITY))

    pils = [g.image for g in images]
    references, warnings = _references(intent, located, identity_encoder, detector,
                                       reference_images, settings)
    get_runtime().check_interrupted()
    found = find_concepts(pils, intent, located, detector, settings.box_threshold)
    similarities = _similarities(pils, found, references, identity_encoder, settings)
    quality, aesthetic = _quality(pils, quality_scorer, settings.batch_size)

    records = [_record(g, c.name, found[i][c.name], similarities.get((i, c.name)),
                       None if quality is None else quality[i])
               for i, g in enumerate(images) for c in located]
    concepts = [_concept_result(c, found, similarities, c.name in references)
                for c in located]
    warnings += [never_found_warning(c, len(pils), Test.STABILITY, settings.box_threshold,
                                     "it counts as a failure in every image")
                 for c, result in zip(located, concepts, strict=True)
                 if result.detection_rate == 0]
    unjudged = "" if quality_scorer is not None else " (connect a quality scorer to judge it)"
    concepts += [ConceptResult(concept=c.name, applicable=False, reason=WHOLE_IMAGE + unjudged)
                 for c in whole]
    models = {"identity_encoder": model_name(identity_encoder), "detector": model_name(detector)}
    if quality_scorer is not None:
        models["quality"] = _scorer_name(quality_scorer)
    for warning in warnings:
        log.warning("StabilityScore: %s", warning)

    identity = mean([r.score for r in concepts if r.applicable])
    if identity is None:
        why = "; ".join(f"{r.concept}: {r.reason}" for r in concepts)
        return MetricResult.not_applicable(Test.STABILITY, f"no kept concept can be scored "
                                           f"({why})", concepts=concepts, records=records,
                                           models=models, warnings=warnings)
    return _combine(identity, quality, aesthetic, settings.quality_weight, concepts=concepts,
                    records=records, models=models, warnings=warnings)


def _references(intent: Intent, concepts: list[Concept], encoder, detector,
                reference_images, settings: StabilitySettings
                ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """concept name -> (R, D) reference embeddings, for the concepts that have any."""
    vectors: dict[str, list[torch.Tensor]] = {c.name: [] for c in concepts}
    warnings = []
    if any(c.all_references() for c in concepts):
        missing = intent.missing_crops()
        if missing:
            warnings.append(f"The intent has no crops for reference box(es) {missing} (it was "
                            "saved without crops): only reference_images are compared.")
        else:
            crops = reference_embeddings(intent, encoder, settings.batch_size)
            for c in concepts:
                vectors[c.name] += [crops[n] for n in c.all_references()]
    if reference_images:
        for name, found in _training_references(intent, concepts, encoder, detector,
                                                reference_images, settings).items():
            vectors[name] += found
    return {name: torch.stack(v) for name, v in vectors.items() if v}, warnings


def _training_references(intent: Intent, concepts: list[Concept], encoder, detector,
                         reference_images, settings: StabilitySettings
                         ) -> dict[str, list[torch.Tensor]]:
    """Embeddings of each concept's best box in every training image, computed once per
    (intent, encoder, detector, threshold, image pixels): the monitor scores many checkpoints
    against the same training images."""
    pils = [to_rgb_pil(image) for image in reference_images]
    digest = hashlib.sha256()
    for pil in pils:
        digest.update(repr(pil.size).encode())
        digest.update(pil.tobytes())
    key = ("stability_references", settings.box_threshold, tuple(c.name for c in concepts),
           digest.hexdigest())

    def embed_best_boxes() -> dict[str, list[torch.Tensor]]:
        found = find_concepts(pils, intent, concepts, detector, settings.box_threshold)
        best = [(name, pils[i], detections[0]) for i, per_image in enumerate(found)
                for name, detections in per_image.items() if detections]
        embedded = (encoder.embed_images([crop_box(pil, d.box) for _, pil, d in best],
                                         batch_size=settings.batch_size) if best else [])
        vectors: dict[str, list[torch.Tensor]] = {}
        for (name, _, _), vector in zip(best, embedded, strict=True):
            vectors.setdefault(name, []).append(vector)
        return vectors

    return intent.memoised(key, (encoder, detector), embed_best_boxes)


def _similarities(pils: list[Image.Image], found: list[dict], references: dict[str, torch.Tensor],
                  encoder, settings: StabilitySettings
                  ) -> dict[tuple[int, str], tuple[float, Detection]]:
    """(image, concept) -> (best cosine over its top boxes and references clipped to [0, 1],
    the box that gave it), for the found concepts that have references; all crops in one
    encoder call."""
    crops = [(i, name, d) for i, per_image in enumerate(found)
             for name, detections in per_image.items() if name in references
             for d in detections[:settings.top_boxes]]
    if not crops:
        return {}
    vectors = encoder.embed_images([crop_box(pils[i], d.box) for i, _, d in crops],
                                   batch_size=settings.batch_size)
    best: dict[tuple[int, str], tuple[float, Detection]] = {}
    for (i, name, detection), vector in zip(crops, vectors, strict=True):
        cosine = float((references[name] @ vector.to(references[name].dtype)).max())
        similarity = min(max(cosine, 0.0), 1.0)
        if (i, name) not in best or similarity > best[(i, name)][0]:
            best[(i, name)] = (similarity, detection)
    return best


def _quality(pils: list[Image.Image], scorer, batch_size: int
             ) -> tuple[list[float] | None, list[float] | None]:
    """Per image: the normalised quality (aesthetic - 1) / 9 clipped to [0, 1], and the raw
    aesthetic score; (None, None) without a scorer."""
    if scorer is None:
        return None, None
    get_runtime().check_interrupted()
    aesthetic = [float(a) for a in scorer.score_images(pils, batch_size=batch_size)]
    return [min(max((a - 1.0) / 9.0, 0.0), 1.0) for a in aesthetic], aesthetic


def _record(g, name: str, detections: list[Detection], best: tuple | None,
            quality: float | None) -> ImageRecord:
    """What the score saw of concept ``name`` in image ``g``: the box that matched best (the
    top-scoring one when it had no references to match)."""
    box = best[1].box if best else (detections[0].box if detections else None)
    return ImageRecord(item=g.item.id, image=g.index, concept=name, found=bool(detections),
                       box=box, similarity=best[0] if best else None, quality=quality)


def _concept_result(concept: Concept, found: list[dict], similarities: dict,
                    has_references: bool) -> ConceptResult:
    hits = [i for i, per_image in enumerate(found) if per_image[concept.name]]
    rate = len(hits) / len(found)
    if not has_references:
        return ConceptResult(concept=concept.name, applicable=False, reason=NO_REFERENCES,
                             images=len(found), detection_rate=rate)
    scores = [similarities[(i, concept.name)][0] for i in hits]
    return ConceptResult(concept=concept.name, images=len(found), detection_rate=rate,
                         mean_similarity=mean(scores),
                         score=math.fsum(scores) / len(found))  # a missing one counts 0


def _combine(identity: float, quality: list[float] | None, aesthetic: list[float] | None,
             weight: float, **result) -> MetricResult:
    identity_formula = ("identity = mean over kept concepts of (detection_rate x "
                        "mean_similarity)")
    if quality is None:
        return MetricResult(
            metric=Test.STABILITY, applicable=True, score=identity,
            formula=f"score = identity (no quality scorer connected); {identity_formula}",
            parts={"identity": identity, "quality": None, "aesthetic": None}, **result)
    quality_mean, aesthetic_mean = mean(quality), mean(aesthetic)
    return MetricResult(
        metric=Test.STABILITY, applicable=True,
        score=(1.0 - weight) * identity + weight * quality_mean,
        formula=(f"score = (1 - quality_weight) x identity + quality_weight x quality, "
                 f"quality_weight = {weight:g}; {identity_formula}; quality = mean over images "
                 "of (aesthetic - 1) / 9 clipped to [0, 1]"),
        parts={"identity": identity, "quality": quality_mean, "aesthetic": aesthetic_mean,
               "quality_weight": weight}, **result)


def _scorer_name(scorer) -> str:
    clip = getattr(scorer, "clip", None)
    return f"{model_name(scorer)} on {clip}" if clip else model_name(scorer)
