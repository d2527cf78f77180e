"""RefFilter: keep only detections that look like the user's reference crops.

"The black jacket" matches every black jacket; the user meant the one in box [1]. Each
detection of a concept with reference boxes is cropped, embedded with the image encoder (all
crops of all images in one batched call) and compared by cosine similarity with the concept's
reference crops (for a modify value, that value's own references when it has some). Detections
below the threshold — or beyond the best k per image — are kept in the record but marked
``kept = False`` with the reason; concepts without references pass through untouched.
Reference crops are embedded once per intent and encoder (memoised on the intent).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from ..errors import InputError
from ..imageio import to_rgb_pil
from ..intent.schema import Concept, Intent
from .types import Detection, Detections

log = logging.getLogger(__name__)

TINY_REFERENCE = 24  # pixels; a reference crop smaller than this says little about identity


@dataclass(frozen=True)
class FilterSettings:
    threshold: float = 0.75  # cosine similarity a detection needs to its best reference crop
    top_k: int = 0  # per image and concept, keep only the k most similar (0: all that pass)
    batch_size: int = 32  # crops per encoder call

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise InputError(f"threshold is a cosine similarity in [-1, 1], got {self.threshold}.")
        if self.top_k < 0 or self.batch_size < 1:
            raise InputError("top_k must be >= 0 and batch_size >= 1.")


def filter_by_references(images: Sequence[Image.Image], detections: Detections, intent: Intent,
                         encoder, settings: FilterSettings | None = None) -> Detections:
    """A copy of ``detections`` filtered by similarity to the reference crops (see module)."""
    settings = settings or FilterSettings()
    pils = [to_rgb_pil(image) for image in images]
    detections.check_images([p.size for p in pils], "images given to RefFilter")
    result = detections.model_copy(deep=True)
    concepts = {c.name: c for c in intent.concepts}
    candidates = [(i, d) for i in range(len(result.images)) for d in result.kept(i)
                  if d.concept in concepts and references_for(concepts[d.concept], d)]
    references = reference_embeddings(intent, encoder, settings.batch_size)
    if candidates:
        crops = [pils[i].crop(tuple(round(v) for v in d.box)) for i, d in candidates]
        vectors = encoder.embed_images(crops, batch_size=settings.batch_size)
        for (_, detection), vector in zip(candidates, vectors, strict=True):
            refs = references_for(concepts[detection.concept], detection)
            similarity = max(float(vector @ references[n]) for n in refs)
            _judge(detection, similarity, settings.threshold)
    if settings.top_k:
        _keep_best(result, settings.top_k)
    result.filter = {"threshold": settings.threshold, "top_k": settings.top_k,
                     "encoder": str(getattr(encoder, "arch", type(encoder).__name__))}
    result.warnings = [*detections.warnings,
                       *_filter_warnings(intent, candidates, settings.threshold)]
    for warning in result.warnings[len(detections.warnings):]:
        log.warning("RefFilter: %s", warning)
    return result


def reference_embeddings(intent: Intent, encoder, batch_size: int = 32) -> dict[int, torch.Tensor]:
    """``{n: embedding}`` of every reference crop, computed once per (intent, encoder)."""
    def embed() -> dict[int, torch.Tensor]:
        missing = intent.missing_crops()
        if missing:
            raise InputError(
                f"The intent has no crops for reference box(es) {missing} (it was saved "
                "without crops). Re-run Intent Parse with the reference images, or save with "
                "crops.")
        crops = [r.crop() for r in intent.references]
        vectors = encoder.embed_images(crops, batch_size=batch_size) if crops else []
        return {r.index: v for r, v in zip(intent.references, vectors, strict=True)}

    return intent.memoised(("reference_embeddings",), (encoder,), embed)


def references_for(concept: Concept, detection: Detection) -> list[int]:
    """The reference boxes a detection is compared with: its value's own; for a detection of
    a value without boxes, only boxes of the concept as a whole (never another value's: a denim
    jacket must not be judged against the leather one); else every box of the concept. An
    empty list means the detection is not filtered."""
    if detection.value is not None:
        value = next((v for v in concept.values if v.text == detection.value), None)
        if value is not None:
            return value.references or concept.references
    return concept.references or concept.all_references()


def _judge(detection: Detection, similarity: float, threshold: float) -> None:
    detection.similarity = similarity
    if similarity < threshold:
        detection.kept = False
        detection.reason = f"similarity {similarity:.2f} < {threshold:.2f}"


def _keep_best(result: Detections, k: int) -> None:
    for i in range(len(result.images)):
        groups: dict[str, list[Detection]] = {}
        for d in result.kept(i):
            if d.similarity is not None:
                groups.setdefault(d.concept, []).append(d)
        for group in groups.values():
            for d in sorted(group, key=lambda d: -(d.similarity or 0))[k:]:
                d.kept = False
                d.reason = f"not among the {k} most similar in this image"


def _filter_warnings(intent: Intent, candidates: list, threshold: float) -> list[str]:
    warnings = []
    for ref in intent.references:  # the box's size is the crop's: no need to decode it
        width, height = round(ref.box[2] - ref.box[0]), round(ref.box[3] - ref.box[1])
        if min(width, height) < TINY_REFERENCE:
            warnings.append(f"Reference [{ref.index}] is only {width}x{height} px; "
                            "similarity to such a small crop is unreliable. Draw a larger box "
                            "or use a larger reference image.")
    by_concept: dict[str, list[float]] = {}
    for _, d in candidates:
        by_concept.setdefault(d.concept, []).append(d.similarity or 0.0)
    for name, sims in by_concept.items():
        if max(sims) < threshold:
            warnings.append(f"None of the {len(sims)} detection(s) of '{name}' look like its "
                            f"reference(s): best similarity {max(sims):.2f} < {threshold:.2f}. "
                            "Lower the threshold, or check the reference boxes.")
    return warnings
