"""What IntentInpaint removes: per training image, the mask of the intent's *delete* concepts.

Each kept detection of a delete concept contributes its SAM mask (``Detection.mask``) or, when
it has none (ConceptDetect ran without SAM, or SAM returned an empty mask), its box. That mask
is dilated by ``dilate_px + dilate_frac * (longer side of the box)`` pixels with an elliptical
kernel (8 px + 2 % by default: a 300 px necklace grows by 14 px), because SAM masks stop at the
object's visible edge and leave its soft edge, reflections and shadow seam behind, which the
model would then learn. The image's mask is the union over all its delete detections. Masks are
computed once per image; every crop of an image takes its pixels from the one cleaned source.

Overlap with *keep* / *modify* concepts (the "protected" ones), decided here once:

* Inside a delete concept's own (dilated) **SAM mask, delete wins**: the user said "never", and
  a SAM mask outlines the object itself. The pixels of protected concepts it takes are reported.
* A delete **box** (no SAM mask) is a coarse stand-in for the object, so the pixels of protected
  concepts' SAM masks are **subtracted** from it, and reported. Except when a protected mask
  covers more than ``contain_frac`` (half) of the box: then the deleted object lies *on* the
  protected one (a necklace on a body, a logo on a jacket), subtracting would leave it in
  place, and the whole box is removed (reported too). Protected concepts known only by their box
  are never subtracted: two boxes do not say which pixels belong to whom.

Warnings (returned, meant for the preview and the summary): a mask covering more than
``max_coverage`` of an image (kept: the user decides), and apart from that one a mask covering
the whole image (nothing is left to fill from); a delete concept with no kept detection
anywhere, or a whole-image (imagery) delete concept, which has no region to paint out (the
captions handle it); an intent without delete concepts.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from ..detection.types import Detection, Detections
from ..errors import InputError
from ..intent.schema import Granularity, Intent, Operation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MaskSettings:
    dilate_px: int = 8  # fixed growth of every delete mask, in source pixels
    dilate_frac: float = 0.02  # plus this fraction of the detection box's longer side
    max_coverage: float = 0.5  # warn when an image's delete mask covers more than this share
    contain_frac: float = 0.5  # a protected SAM mask covering more of a delete box: box wins

    def __post_init__(self) -> None:
        if self.dilate_px < 0 or self.dilate_frac < 0:
            raise InputError(f"Mask dilation must be >= 0 (dilate_px={self.dilate_px}, "
                             f"dilate_frac={self.dilate_frac}).")
        if not (0 < self.max_coverage <= 1 and 0 < self.contain_frac <= 1):
            raise InputError(f"max_coverage ({self.max_coverage}) and contain_frac "
                             f"({self.contain_frac}) must be in (0, 1].")

    def radius(self, box: tuple[float, float, float, float]) -> int:
        """The dilation radius (px) for a detection with XYXY ``box``."""
        longer = max(box[2] - box[0], box[3] - box[1], 0.0)
        return self.dilate_px + round(self.dilate_frac * longer)


@dataclass
class ImageMask:
    """The delete mask of one image and how it came about."""

    index: int  # position of the image in the stage's image list
    name: str  # the image's file name, for messages
    size: tuple[int, int]  # (width, height)
    mask: np.ndarray  # H x W bool: everything to inpaint (union of `concepts`)
    concepts: dict[str, np.ndarray] = field(default_factory=dict)  # delete concept -> its mask
    notes: list[str] = field(default_factory=list)  # overlaps and fallbacks, one line each
    warnings: list[str] = field(default_factory=list)  # what the user should look at

    @property
    def coverage(self) -> float:
        """Share of the image's pixels that will be inpainted, in [0, 1]."""
        return float(self.mask.mean()) if self.mask.size else 0.0


@dataclass
class DeleteMasks:
    images: list[ImageMask]
    delete_concepts: list[str]  # names of the intent's delete concepts, in intent order
    warnings: list[str]  # global warnings (per-image ones are in ImageMask.warnings)
    settings: MaskSettings

    def all_warnings(self) -> list[str]:
        return [*self.warnings, *(w for image in self.images for w in image.warnings)]


def delete_masks(detections: Detections, intent: Intent, settings: MaskSettings | None = None,
                 names: list[str] | None = None) -> DeleteMasks:
    """The delete mask of every image ``detections`` covers (see the module docstring).

    ``names``: the images' file names for messages (default ``image_<i>``).
    """
    settings = settings or MaskSettings()
    count = len(detections.images)
    names = names or [f"image_{i}" for i in range(count)]
    if len(names) != count:
        raise InputError(f"{len(names)} image names for {count} images of detections.")
    delete = [c.name for c in intent.by_operation(Operation.DELETE)]
    protected = {c.name: c.operation.value for c in intent.concepts
                 if c.operation is not Operation.DELETE}
    images = [_image_mask(detections, i, names[i], set(delete), protected, settings)
              for i in range(count)]
    imagery = {c.name for c in intent.concepts if c.granularity is Granularity.IMAGERY}
    return DeleteMasks(images, delete, _global_warnings(detections, delete, imagery), settings)


def _image_mask(detections: Detections, index: int, name: str, delete: set[str],
                protected: dict[str, str], settings: MaskSettings) -> ImageMask:
    entry = detections.images[index]
    width, height = entry.size
    result = ImageMask(index, name, entry.size, np.zeros((height, width), dtype=bool))
    kept = detections.kept(index)
    guards = [d for d in kept if d.concept in protected]
    guard_masks = _GuardMasks(guards, entry.size)
    for d in (d for d in kept if d.concept in delete):
        base, kind = _base_mask(d, entry.size, result.notes)
        if base is None:
            continue
        grown = dilate(base, settings.radius(d.box))
        if kind == "box":
            grown = _protect(d, base, grown, guard_masks, protected, settings, result.notes)
        else:
            _report_taken(d, grown, guard_masks, protected, result.notes)
        previous = result.concepts.get(d.concept)
        result.concepts[d.concept] = grown if previous is None else previous | grown
        result.mask |= grown
    if result.mask.size and result.mask.all():
        result.warnings.append(
            f"{name}: the delete mask covers the whole image, so there is nothing left to fill "
            "from: the fill is invented (flat grey with the classical backend). Leave this "
            "image out of the set or lower the dilation.")
    elif result.coverage > settings.max_coverage:
        result.warnings.append(
            f"{name}: the delete mask covers {result.coverage:.0%} of the image (more than "
            f"{settings.max_coverage:.0%}), so most of it will be invented; check the preview "
            "and consider leaving this image out.")
    return result


def _base_mask(d: Detection, size: tuple[int, int], notes: list[str]):
    """(H x W bool mask, "sam" | "box") of a delete detection, or (None, "") if it is empty."""
    if d.mask is not None and d.mask.area > 0:
        return d.mask.decode(size), "sam"
    if d.mask is not None:
        notes.append(f"{d.concept}: SAM mask is empty, used the box {_fmt(d.box)} instead")
    mask = box_mask(d.box, size)
    if not mask.any():
        notes.append(f"{d.concept}: box {_fmt(d.box)} lies outside the image, skipped")
        return None, ""
    return mask, "box"


def box_mask(box: tuple[float, float, float, float], size: tuple[int, int]) -> np.ndarray:
    """H x W bool mask of the pixels an XYXY ``box`` touches (floor/ceil, clipped), the same
    rounding as `BoxMask.encode`."""
    width, height = size
    x0, y0 = max(0, math.floor(box[0])), max(0, math.floor(box[1]))
    x1, y1 = min(width, math.ceil(box[2])), min(height, math.ceil(box[3]))
    mask = np.zeros((height, width), dtype=bool)
    if x1 > x0 and y1 > y0:
        mask[y0:y1, x0:x1] = True
    return mask


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` grown by ``radius`` px with an elliptical (here: disc) kernel of side
    2 * radius + 1. Works on the mask's bounding window only, so one small object in a large
    photo costs little."""
    if radius <= 0 or not mask.any():
        return mask.copy()
    import cv2

    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    height, width = mask.shape
    y0, y1 = max(0, rows[0] - radius), min(height, rows[-1] + 1 + radius)
    x0, x1 = max(0, cols[0] - radius), min(width, cols[-1] + 1 + radius)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    out = np.zeros_like(mask)
    window = mask[y0:y1, x0:x1].astype(np.uint8)
    out[y0:y1, x0:x1] = cv2.dilate(window, kernel, borderType=cv2.BORDER_CONSTANT,
                                   borderValue=0) > 0
    return out


class _GuardMasks:
    """The full-image masks of the protected detections, decoded once per image on demand."""

    def __init__(self, detections: list[Detection], size: tuple[int, int]):
        self.detections = detections
        self.size = size
        self._cache: dict[int, np.ndarray] = {}

    def mask(self, i: int) -> np.ndarray:
        """Detection i's SAM mask, or its box when it has none."""
        if i not in self._cache:
            d = self.detections[i]
            has_sam = d.mask is not None and d.mask.area > 0
            self._cache[i] = d.mask.decode(self.size) if has_sam else box_mask(d.box, self.size)
        return self._cache[i]

    def has_sam(self, i: int) -> bool:
        d = self.detections[i]
        return d.mask is not None and d.mask.area > 0


def _protect(d: Detection, base: np.ndarray, grown: np.ndarray, guards: _GuardMasks,
             protected: dict[str, str], settings: MaskSettings, notes: list[str]) -> np.ndarray:
    """The box mask ``grown`` minus the protected SAM masks it overlaps (module docstring)."""
    box_area = int(base.sum())
    for i, guard in enumerate(guards.detections):
        other = guards.mask(i)
        overlap = grown & other
        taken = int(overlap.sum())
        if not taken:
            continue
        what = f"{guard.concept} ({protected[guard.concept]})"
        if not guards.has_sam(i):
            notes.append(f"{d.concept} (box) overlaps the box of {what}: delete wins over "
                         f"{taken} px (no SAM mask says which pixels are whose)")
        elif (base & other).sum() > settings.contain_frac * box_area:
            notes.append(f"{d.concept} (box) lies on {what}: delete wins over {taken} px of it")
        else:
            grown = grown & ~other
            notes.append(f"{d.concept} (box): {taken} px of {what}'s SAM mask protected")
    return grown


def _report_taken(d: Detection, grown: np.ndarray, guards: _GuardMasks,
                  protected: dict[str, str], notes: list[str]) -> None:
    for i, guard in enumerate(guards.detections):
        taken = int((grown & guards.mask(i)).sum())
        if taken:
            notes.append(f"{d.concept} (SAM mask) removes {taken} px of {guard.concept} "
                         f"({protected[guard.concept]}): delete wins inside its own mask")


def _global_warnings(detections: Detections, delete: list[str],
                     imagery: set[str]) -> list[str]:
    if not delete:
        return ["The intent has no delete concepts: nothing is inpainted, the images pass "
                "through unchanged."]
    warnings = []
    for concept in delete:
        if concept in imagery:
            warnings.append(f"Delete concept '{concept}' is a whole-image quality (imagery): "
                            "it has no region to paint out, so no image is inpainted for it; "
                            "the captions handle it.")
            continue
        found = [d for entry in detections.images for d in entry.detections
                 if d.concept == concept]
        if any(d.kept for d in found):
            continue
        if found:
            warnings.append(f"Delete concept '{concept}': all {len(found)} detection(s) were "
                            "dropped by a filter, so it is removed from no image; check the "
                            "Reference Filter preview.")
        else:
            warnings.append(f"Delete concept '{concept}' was not found in any image, so it is "
                            "removed from none; lower ConceptDetect's thresholds or check its "
                            "phrase if the images do show it.")
    return warnings


def _fmt(box: tuple[float, float, float, float]) -> str:
    return "(" + ", ".join(f"{v:.0f}" for v in box) + ")"
