"""IntentCrop's plan: which extra training images each source yields, and why (no pixels).

Per concept operation (SPEC section 1, phase 2):

- *keep* → a close-up of each kept detection (up to `CropSettings.max_crops_per_concept_per_image`
  per image), so the model learns the concept's detail under the trigger word;
- *modify* → a close-up only while the concept is small (box area below ``modify_area`` of the
  image): small concepts such as hair get their own crop, already-salient ones are not
  duplicated;
- *delete* → no crop (IntentInpaint paints it out); *imagery* concepts (lighting, style) have no
  box → no crop: the whole originals carry them.

Every source also yields one 'original' item (group 'original'); a crop's group is its
concept's name, never the originals' (`types.crop_group`: a concept named 'original' crops into
'original_crop'). Each decision not to make a crop lands in `AugmentPlan.skipped` with its
reason; each adjustment of a crop made (shifted at an edge, upscaled, merged with a duplicate)
in its item's ``notes``. Where crops of different concepts
overlap, each crop keeps its own concept's operation; where a *delete* concept lies in a crop,
delete wins (a concept the user never wants must never be learned), so inpainting may change
part of a kept concept, which is warned about.

`plan_crops` is pure and cheap (arithmetic on boxes), so it is rerun freely; the pixels are cut
later by `augment.render`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from ..detection.types import Detection, Detections
from ..errors import InputError
from ..intent.schema import Concept, Granularity, Intent
from .regions import ASPECT_POLICIES, Fit, box_area, clip_box, crop_region, intersection, iou
from .types import ORIGINAL_GROUP, AugmentPlan, CropItem, crop_group

log = logging.getLogger(__name__)

SMALL_CROP_POLICIES = ("upscale", "skip")
UPSCALE_METHODS = ("lanczos", "bicubic", "bilinear")  # names `render.RESAMPLE` knows
# A delete box covering this much of a kept concept's box is warned about: inpainting it will
# visibly change the kept concept.
DELETE_INTRUSION = 0.25
# Another concept whose box lies at least this much inside a crop is noted as shown in it.
SHOWN_INSIDE = 0.5


@dataclass
class CropSettings:
    """How IntentCrop cuts crops; the node's widgets map onto these one to one."""

    margin: float = 0.25  # context on each side, as a fraction of the box's width / height
    # "nearest": widen the shorter side to the nearest of 1:1, 3:4, 4:3, 2:3, 3:2 (shapes
    # trainers bucket with little extra cropping); "square": always 1:1; "free": box + margin.
    aspect: str = "nearest"
    # Shorter side of a crop's output, px. 256 is kohya's default smallest bucket side
    # (min_bucket_reso): smaller crops would be blown up by the trainer, without saying so.
    min_size: int = 256
    # What a crop below min_size gets: "upscale" (with upscale_method, at most max_upscale) or
    # "skip" (listed with its reason).
    small_crops: str = "upscale"
    upscale_method: str = "lanczos"  # Lanczos keeps edges sharpest of Pillow's filters
    max_upscale: float = 2.0  # beyond 2x, interpolation invents too much of the detail to learn
    modify_area: float = 0.40  # a modify concept gets a crop only below this share of the image
    # Best-matching boxes (reference similarity, else score) cropped per concept and image:
    # one subject per photo, so further boxes are mostly other people or false positives, and
    # several crops from one photo would over-weight it. 0 = no limit.
    max_crops_per_concept_per_image: int = 1
    # Crops of one source whose regions overlap more than this (IoU) are one crop: the same
    # face found under two phrases, say. The keep one stays, else the larger.
    dedupe_iou: float = 0.85

    def __post_init__(self) -> None:
        checks = [
            (0.0 <= self.margin <= 2.0, f"margin must be in [0, 2], got {self.margin}"),
            (self.aspect in ASPECT_POLICIES,
             f"aspect must be one of {', '.join(ASPECT_POLICIES)}, got '{self.aspect}'"),
            (16 <= self.min_size <= 4096, f"min_size must be 16 to 4096 px, got {self.min_size}"),
            (self.small_crops in SMALL_CROP_POLICIES,
             f"small_crops must be 'upscale' or 'skip', got '{self.small_crops}'"),
            (self.upscale_method in UPSCALE_METHODS,
             f"upscale_method must be one of {', '.join(UPSCALE_METHODS)}, got "
             f"'{self.upscale_method}'"),
            (1.0 <= self.max_upscale <= 8.0,
             f"max_upscale must be in [1, 8] (1 = never upscale), got {self.max_upscale}"),
            (0.0 < self.modify_area <= 1.0,
             f"modify_area must be in (0, 1], got {self.modify_area}"),
            (self.max_crops_per_concept_per_image >= 0,
             "max_crops_per_concept_per_image must be 0 (no limit) or more, got "
             f"{self.max_crops_per_concept_per_image}"),
            (0.0 < self.dedupe_iou <= 1.0, f"dedupe_iou must be in (0, 1], got {self.dedupe_iou}"),
        ]
        errors = [message for ok, message in checks if not ok]
        if errors:
            raise InputError("IntentCrop settings: " + "; ".join(errors) + ".")


@dataclass
class _Candidate:
    """A crop about to enter the plan, with what de-duplication and overlap notes need."""

    item: CropItem
    label: str  # "face (keep)", for messages
    rank: tuple  # larger wins de-duplication: keep before modify, larger region, higher score
    order: tuple  # position in the plan: intent concept order, then left to right
    merged: set[str] = field(default_factory=set)  # concepts whose duplicate crops it absorbed


@dataclass
class _Skip:
    message: str  # "<source>: <concept> (<operation>) <why>"
    salient: bool = False  # a modify concept too large to need a crop: by design, not a loss


def given_names(names: list[str] | None, count: int) -> list[str]:
    """The provenance name of each of ``count`` sources: ``names``, or 'image_<i>' where none
    is given (``names`` None or empty, or an entry blank)."""
    if not names:
        return [f"image_{i}" for i in range(count)]
    if len(names) != count:
        raise InputError(f"names has {len(names)} entries for {count} images. Connect the names "
                         "output of the Load Training Images node that loaded these images, or "
                         "leave names unconnected.")
    return [str(n).strip() or f"image_{i}" for i, n in enumerate(names)]


def original_item(index: int, name: str, size: tuple[int, int]) -> CropItem:
    width, height = size
    return CropItem(source_index=index, source_name=name, operation="original",
                    region=(0, 0, width, height), out_size=(width, height), resample="none",
                    group=ORIGINAL_GROUP)


def plan_crops(intent: Intent, detections: Detections, sizes: list[tuple[int, int]],
               names: list[str] | None = None, settings: CropSettings | None = None
               ) -> AugmentPlan:
    """The crops (and originals) to make from the training images the detections were made on.

    ``sizes``: (width, height) of each training image, in order; they must be the images of
    ``detections`` (else `InputError`). ``names``: their file names, for provenance. Boxes and
    regions are XYXY source pixels; each item's region lies inside its image and ``out_size``
    is what `render.render_item` produces from it.
    """
    settings = settings or CropSettings()
    sizes = [(int(w), int(h)) for w, h in sizes]
    detections.check_images(sizes, "IntentCrop images")
    names = given_names(names, len(sizes))
    plan = AugmentPlan(settings=asdict(settings))
    concepts = {c.name: c for c in intent.concepts}
    plan.skipped += _uncropped_concepts(intent)
    plan.warnings += _mismatches(intent, detections)
    covered: set[str | None] = set()  # concepts with at least one crop (or merged into one)
    lost: set[str] = set()  # concepts with a crop skipped for a reason other than salience
    for index, (size, name) in enumerate(zip(sizes, names, strict=True)):
        plan.items.append(original_item(index, name, size))
        found = detections.kept(index)
        candidates = []
        for concept, boxes in _boxes_to_crop(found, concepts, settings, name, plan.skipped):
            for detection in boxes:
                made = _candidate(index, name, size, concept, detection, settings, list(concepts))
                if isinstance(made, _Skip):
                    plan.skipped.append(made.message)
                    if not made.salient:
                        lost.add(concept.name)
                else:
                    candidates.append(made)
        crops = _dedupe(candidates, settings.dedupe_iou, name, plan.skipped)
        for crop in crops:
            plan.warnings += _note_overlaps(crop, found, concepts, name)
            covered |= {crop.item.concept, *crop.merged}
        plan.items += [c.item for c in crops]
    plan.warnings += _never_cropped(intent, detections, covered, lost)
    for warning in plan.warnings:
        log.warning("IntentCrop: %s", warning)
    return plan


def _boxes_to_crop(found: list[Detection], concepts: dict[str, Concept], settings: CropSettings,
                   name: str, skipped: list[str]) -> list[tuple[Concept, list[Detection]]]:
    """Per keep/modify concept of one image, its best boxes (at most the per-image limit)."""
    by_concept: dict[str, list[Detection]] = {}
    for d in found:
        concept = concepts.get(d.concept)
        if concept is not None and concept.operation.value in ("keep", "modify"):
            by_concept.setdefault(d.concept, []).append(d)
    chosen = []
    limit = settings.max_crops_per_concept_per_image
    for concept_name, boxes in by_concept.items():
        # RefFilter's similarity says which box is the user's concept better than the score
        boxes = sorted(boxes, key=lambda d: (d.similarity if d.similarity is not None else -2.0,
                                             d.score), reverse=True)
        if limit and len(boxes) > limit:
            concept = concepts[concept_name]
            skipped.append(f"{name}: {len(boxes) - limit} more {concept_name} "
                           f"({concept.operation.value}) box(es) not cropped: "
                           f"max_crops_per_concept_per_image is {limit} (the best-matching box "
                           "is used)")
            boxes = boxes[:limit]
        chosen.append((concepts[concept_name], boxes))
    return chosen


def _candidate(index: int, name: str, size: tuple[int, int], concept: Concept, d: Detection,
               settings: CropSettings, concept_order: list[str]) -> _Candidate | _Skip:
    """The crop of detection ``d``, or why it is not made."""
    operation = concept.operation.value
    label = f"{concept.name}{f' ({d.value})' if d.value else ''} ({operation})"
    box = clip_box(d.box, size)
    if box[2] - box[0] < 1 or box[3] - box[1] < 1:
        return _Skip(f"{name}: {label} box {d.box} lies outside the {size[0]}x{size[1]} image")
    share = box_area(box) / (size[0] * size[1])
    if operation == "modify" and share >= settings.modify_area:
        return _Skip(f"{name}: {label} not cropped: already salient, its box covers "
                     f"{share:.1%} of the image (a modify crop needs less than modify_area "
                     f"{settings.modify_area:.0%})", salient=True)
    fit = crop_region(box, size, settings.margin, settings.aspect)
    scaled = _scale(fit.region, settings)
    if isinstance(scaled, str):
        return _Skip(f"{name}: {label} {scaled}")
    out_size, resample, scale_note = scaled
    notes = _fit_notes(fit, d, concept.name, settings)
    if scale_note:
        notes.append(scale_note)
    item = CropItem(source_index=index, source_name=name, operation=operation,
                    concept=concept.name, value=d.value, region=fit.region,
                    box=tuple(float(v) for v in d.box), out_size=out_size, resample=resample,
                    group=crop_group(concept.name, concept_order), notes=notes)
    return _Candidate(item=item, label=label,
                      rank=(operation == "keep", box_area(fit.region), d.score),
                      order=(concept_order.index(concept.name), fit.region[0], fit.region[1]))


def _scale(region: tuple[int, int, int, int], settings: CropSettings
           ) -> tuple[tuple[int, int], str, str | None] | str:
    """(out_size, resample, note) for a crop of ``region``, or why it is not made."""
    width, height = region[2] - region[0], region[3] - region[1]
    shorter = min(width, height)
    if shorter >= settings.min_size:
        return (width, height), "none", None
    if settings.small_crops == "skip":
        return (f"crop {width}x{height} px is below the {settings.min_size} px minimum "
                "(small_crops is 'skip')")
    factor = settings.min_size / shorter
    if factor > settings.max_upscale:
        return (f"crop {width}x{height} px would need {factor:.2f}x upscaling to reach the "
                f"{settings.min_size} px minimum, more than max_upscale "
                f"{settings.max_upscale:g}x")
    longer = round(max(width, height) * factor)
    out = (settings.min_size, longer) if width <= height else (longer, settings.min_size)
    return out, settings.upscale_method, (
        f"upscaled {factor:.2f}x ({settings.upscale_method}) from {width}x{height} to "
        f"{out[0]}x{out[1]} px to reach the {settings.min_size} px minimum")


def _fit_notes(fit: Fit, d: Detection, concept: str, settings: CropSettings) -> list[str]:
    notes = []
    if d.touches_border:
        notes.append(f"the {concept} box touches the image edge (the {concept} may be cut off "
                     "by the frame); the region stays inside the image, no padding")
    if fit.shift != (0, 0):
        notes.append(f"moved {fit.shift[0]:+d},{fit.shift[1]:+d} px to stay inside the image "
                     "(no padding), so the margin is uneven")
    if fit.no_ratio_fits:
        notes.append(f"no {settings.aspect} aspect ratio holds the box inside the image: "
                     "free aspect")
    elif fit.margin_cut:
        notes.append(f"the image is too small for the full {settings.margin:g} margin at "
                     f"{fit.aspect}: margin reduced")
    return notes


def _dedupe(candidates: list[_Candidate], threshold: float, name: str, skipped: list[str]
            ) -> list[_Candidate]:
    """One crop per region: a candidate overlapping a better one by IoU > ``threshold`` is
    merged into it (noted on the kept item, listed in ``skipped``)."""
    kept: list[_Candidate] = []
    for c in sorted(candidates, key=lambda c: c.rank, reverse=True):
        overlap = {id(k): iou(k.item.region, c.item.region) for k in kept}
        twin = next((k for k in kept if overlap[id(k)] > threshold), None)
        if twin is None:
            kept.append(c)
            continue
        if twin.item.operation != c.item.operation:
            why = ("a keep crop wins over a modify crop of the same pixels: the trigger word "
                   "must learn them, and the modify concept stays visible in it")
        elif twin.rank[1] > c.rank[1]:
            why = "the larger region is kept (more context)"
        else:
            why = "the higher-scoring detection is kept"
        share = f"IoU {overlap[id(twin)]:.2f}"
        twin.item.notes.append(f"also stands for the {c.label} crop of nearly the same region "
                               f"({share}): {why}")
        twin.merged.add(c.item.concept or "")
        skipped.append(f"{name}: {c.label} crop merged into the {twin.label} crop, nearly the "
                       f"same region ({share}): {why}")
    return sorted(kept, key=lambda c: c.order)


def _note_overlaps(crop: _Candidate, found: list[Detection], concepts: dict[str, Concept],
                   name: str) -> list[str]:
    """Note other concepts shown in ``crop`` and say which operation wins; warnings back."""
    warnings = []
    item = crop.item
    own = item.box or item.region
    for d in found:
        concept = concepts.get(d.concept)
        if concept is None or d.concept == item.concept or d.concept in crop.merged:
            continue
        inside = intersection(d.box, item.region) / max(box_area(d.box), 1e-9)
        operation = concept.operation.value
        if operation == "delete" and inside > 0:
            item.notes.append(f"shows {d.concept} (delete), {inside:.0%} of its box: delete "
                              "wins, so IntentInpaint paints it out of the source before this "
                              "crop is used")
            intrusion = intersection(d.box, own) / max(box_area(own), 1e-9)
            if intrusion >= DELETE_INTRUSION:
                warnings.append(
                    f"{name}: {d.concept} (delete) covers {intrusion:.0%} of the {crop.label} "
                    f"box. Delete wins (a deleted concept must never be learned), so "
                    f"inpainting will change that part of the {item.concept}: check the preview.")
        elif operation != item.operation and inside >= SHOWN_INSIDE:
            note = (f"also shows {d.concept} ({operation}); this stays a {item.operation} crop "
                    f"of {item.concept}: each concept keeps its own operation")
            if note not in item.notes:
                item.notes.append(note)
    return warnings


def _uncropped_concepts(intent: Intent) -> list[str]:
    """Concepts that never get a crop, by design, each with why."""
    lines = []
    for c in intent.concepts:
        if c.operation.value == "delete":
            lines.append(f"{c.name} (delete): no crop by design; IntentInpaint paints it out")
        elif c.granularity is Granularity.IMAGERY:
            lines.append(f"{c.name} ({c.operation.value}, imagery): a whole-image quality with "
                         "no box, so no crop; the original images carry it")
    return lines


def _boxable(intent: Intent) -> list[Concept]:
    return [c for c in intent.concepts if c.operation.value in ("keep", "modify")
            and c.granularity is not Granularity.IMAGERY]


def _mismatches(intent: Intent, detections: Detections) -> list[str]:
    """Detections and intent that do not belong together (the intent changed in between)."""
    names = {c.name for c in intent.concepts}
    searched = {n for served in detections.queries.values() for n in served}
    foreign = sorted({d.concept for i in detections.images for d in i.detections} - names)
    warnings = []
    if foreign:
        warnings.append(f"The detections show concept(s) {', '.join(foreign)} that this intent "
                        "does not have; they are ignored. Re-run Concept Detect with this intent.")
    unsearched = [c.name for c in _boxable(intent) if detections.queries and c.name not in searched]
    if unsearched:
        warnings.append(f"Concept Detect did not look for {', '.join(unsearched)} (the intent "
                        "changed since); re-run it with this intent to get their crops.")
    return warnings


def _never_cropped(intent: Intent, detections: Detections, covered: set[str | None],
                   lost: set[str]) -> list[str]:
    """A warning per keep/modify concept with a box that got no crop in any image, and why."""
    total = len(detections.images)
    warnings = []
    for c in _boxable(intent):
        found = sum(any(d.concept == c.name for d in detections.kept(i)) for i in range(total))
        if not found:
            warnings.append(f"'{c.name}' ({c.operation.value}) has no detection in any of the "
                            f"{total} image(s), so it gets no crop. Lower Concept Detect's "
                            "box_threshold or Reference Filter's threshold, or describe it "
                            "differently in the intent.")
        elif c.name not in covered and c.name in lost:
            warnings.append(f"'{c.name}' ({c.operation.value}) was found in {found} image(s) but "
                            "every crop of it was skipped (see skipped): lower min_size, raise "
                            "max_upscale or set small_crops to 'upscale'.")
    return warnings
