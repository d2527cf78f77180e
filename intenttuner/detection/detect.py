"""ConceptDetect: find every detectable concept of an intent in every training image.

One detector pass per image for all the intent's phrases (batched), boxes in original-image
pixels, same-phrase duplicates merged by non-maximum suppression, optional SAM masks from the
boxes, and a warning for every concept that was never found — never silence.

    detections = detect_concepts(images, intent, detector, segmenter)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..errors import InputError
from ..families.base import Package
from ..imageio import to_rgb_pil
from ..intent.schema import Intent
from ..runtime import get_runtime
from .queries import Query, build_queries
from .types import BoxMask, Detection, Detections, ImageDetections

# What detection needs beyond the requirements: torchvision.ops.batched_nms merges duplicate
# boxes; ComfyUI ships torchvision, so requirements.txt leaves it out (callers check it with
# families.base.require_packages; the nodes declare it so ComfyUI marks them unavailable).
DETECTION_PACKAGES = (Package("torchvision", "torchvision"),)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectSettings:
    box_threshold: float = 0.35  # GroundingDINO's customary box threshold
    text_threshold: float = 0.25  # and text threshold (see families/detector.py)
    nms_iou: float = 0.7  # same-phrase boxes overlapping more than this are one object
    max_per_phrase: int = 10  # per image: the best-scoring boxes of each phrase
    min_box_side: float = 2.0  # pixels; thinner boxes are degenerate and dropped
    # Images per detector pass (1.19x images/s over one at a time on a 2-core CPU at 480 px,
    # bench/detection.py; batches are formed by aspect ratio so they pad little).
    batch_size: int = 4

    def __post_init__(self) -> None:
        for name in ("box_threshold", "text_threshold", "nms_iou"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must be between 0 and 1, got {getattr(self, name)}.")
        if self.max_per_phrase < 1 or self.batch_size < 1:
            raise InputError("max_per_phrase and batch_size must be at least 1.")


def detect_concepts(images: Sequence[Image.Image], intent: Intent, detector,
                    segmenter=None, settings: DetectSettings | None = None) -> Detections:
    """Detect the intent's concepts in ``images`` (PIL, any size and mode).

    ``detector`` is a loaded detector family model (``detect(images, phrases, ...)``);
    ``segmenter`` an optional SAM (``masks_for_boxes(image, boxes)``) that adds a mask to every
    box. Returns `Detections` with one entry per image, in order.
    """
    settings = settings or DetectSettings()
    if not images:
        raise InputError("ConceptDetect got no images: connect the training images.")
    pils = [to_rgb_pil(image) for image in images]
    queries, skipped = build_queries(intent)
    result = Detections(
        images=[ImageDetections(index=i, size=p.size) for i, p in enumerate(pils)],
        queries={q.phrase: sorted({t.concept for t in q.targets}) for q in queries},
        box_threshold=settings.box_threshold, text_threshold=settings.text_threshold)
    if skipped:
        log.info("imagery concepts are whole-image qualities, not boxed: %s", skipped)
    if not queries:
        result.warnings.append("The intent has no concept to box (only whole-image qualities "
                               f"such as {', '.join(skipped) or 'none'}); nothing was detected.")
        return result
    raw = _detect_by_aspect(detector, pils, [q.phrase for q in queries], settings)
    degenerate = 0
    with get_runtime().progress(total=len(pils), desc="Building detections") as bar:
        for entry, image, found in zip(result.images, pils, raw, strict=True):
            rows, dropped = _clean(found, settings)
            degenerate += dropped
            masks = _masks(segmenter, image, rows)
            entry.detections = _expand(rows, masks, queries, image.size)
            bar.update(1)
    if degenerate:
        result.warnings.append(f"{degenerate} degenerate box(es) thinner than "
                               f"{settings.min_box_side:g} px were dropped.")
    result.warnings += missing_concept_warnings(result, intent, skipped)
    for warning in result.warnings:
        log.warning("ConceptDetect: %s", warning)
    return result


def _detect_by_aspect(detector, pils: list[Image.Image], phrases: list[str],
                      settings: DetectSettings) -> list[list]:
    """Run the detector with images ordered by aspect ratio, so each batch pads as little as
    possible (padding changes what a detector sees near the borders), in the caller's order."""
    order = sorted(range(len(pils)), key=lambda i: pils[i].height / pils[i].width)
    found = detector.detect([pils[i] for i in order], phrases,
                            box_threshold=settings.box_threshold,
                            text_threshold=settings.text_threshold,
                            batch_size=settings.batch_size)
    result: list[list] = [[] for _ in pils]
    for position, index in enumerate(order):
        result[index] = found[position]
    return result


def _clean(found: list, settings: DetectSettings) -> tuple[list, int]:
    """Drop degenerate boxes, merge same-phrase duplicates (NMS), cap boxes per phrase."""
    from torchvision.ops import batched_nms

    rows = [d for d in found if min(d.box[2] - d.box[0], d.box[3] - d.box[1])
            >= settings.min_box_side]
    dropped = len(found) - len(rows)
    if not rows:
        return [], dropped
    boxes = torch.tensor([d.box for d in rows], dtype=torch.float32)
    scores = torch.tensor([d.score for d in rows], dtype=torch.float32)
    phrases = torch.tensor([d.phrase_index for d in rows])
    keep = batched_nms(boxes, scores, phrases, settings.nms_iou).tolist()  # by score, desc
    per_phrase: dict[int, int] = {}
    kept = []
    for i in keep:
        count = per_phrase.get(rows[i].phrase_index, 0)
        if count < settings.max_per_phrase:
            kept.append(rows[i])
            per_phrase[rows[i].phrase_index] = count + 1
    return kept, dropped


def _masks(segmenter, image: Image.Image, rows: list) -> list[BoxMask | None]:
    if segmenter is None or not rows:
        return [None] * len(rows)
    boxes = np.array([r.box for r in rows], dtype=np.float32)
    masks = segmenter.masks_for_boxes(np.asarray(image), boxes)
    return [BoxMask.encode(mask, row.box) for mask, row in zip(masks, rows, strict=True)]


def _expand(rows: list, masks: list, queries: list[Query], size: tuple[int, int]
            ) -> list[Detection]:
    """One Detection per box and concept it serves (concepts may share a phrase)."""
    width, height = size
    out = []
    for row, mask in zip(rows, masks, strict=True):
        query = queries[row.phrase_index]
        x1, y1, x2, y2 = row.box
        border = x1 <= 0.5 or y1 <= 0.5 or x2 >= width - 0.5 or y2 >= height - 0.5
        out += [Detection(concept=t.concept, value=t.value, phrase=query.phrase, box=row.box,
                          score=row.score, touches_border=border, mask=mask)
                for t in query.targets]
    return out


def missing_concept_warnings(detections: Detections, intent: Intent, skipped: list[str]
                             ) -> list[str]:
    """A warning per boxed concept that no image shows (after any filtering)."""
    warnings = []
    total = len(detections.images)
    for concept in intent.concepts:
        if concept.name in skipped:
            continue
        found = sum(any(d.concept == concept.name for d in detections.kept(i))
                    for i in range(total))
        if not found:
            phrases = [p for p, names in detections.queries.items() if concept.name in names]
            warnings.append(
                f"'{concept.name}' was not found in any of the {total} image(s) (looked for "
                f"{' / '.join(repr(p) for p in phrases)}). Lower box_threshold "
                f"({detections.box_threshold:g}) or describe it differently in the intent.")
    return warnings


def concept_counts(detections: Detections) -> dict[str, tuple[int, int]]:
    """concept -> (kept boxes, images with at least one kept box)."""
    counts: dict[str, list[int]] = {}
    for i in range(len(detections.images)):
        seen = set()
        for d in detections.kept(i):
            entry = counts.setdefault(d.concept, [0, 0])
            entry[0] += 1
            if d.concept not in seen:
                entry[1] += 1
                seen.add(d.concept)
    return {k: (v[0], v[1]) for k, v in counts.items()}
