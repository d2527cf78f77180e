"""IntentInpaint's pipeline step: delete concepts painted out of an AUGMENTED set's sources.

Reads top to bottom: choose the backend, check the detections belong to these images, compute
every image's delete mask once (`masks.delete_masks`), inpaint the images that have one (in
batches, `inpaint.inpaint`), then record the result in a new `Augmented`: cleaned sources, the
masks, the settings, and on every planned item the delete concepts whose mask reaches into the
item's region (``CropItem.removed``). Items are cut from the cleaned sources later
(`augment.render`), so crops come out clean without being inpainted separately.

Warnings (large masks, concepts never found, a second inpainting pass) go into the plan's
``warnings``, prefixed ``IntentInpaint:``, so every later preview and summary shows them; a
large-mask warning is also noted on that image's items.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from PIL import Image

from ..detection.types import Detections
from ..errors import InputError
from ..intent.schema import Intent
from .inpaint import choose_backend, inpaint
from .inpaint_base import InpaintSettings
from .masks import DeleteMasks, MaskSettings, delete_masks
from .types import Augmented, AugmentPlan

log = logging.getLogger(__name__)
WARNING_PREFIX = "IntentInpaint: "


@dataclass
class Removal:
    """What `remove_deleted` did, for the node's outputs and previews."""

    augmented: Augmented  # the result: cleaned sources, masks, settings, items' ``removed``
    before: list[Image.Image]  # the sources as they came in
    masks: DeleteMasks  # per image: mask, per-concept masks, notes, warnings
    backend: str  # the backend that ran
    choice: str  # why (for "auto"), else ""
    seconds: float  # inpainting time

    def warnings(self) -> list[str]:
        return [w.removeprefix(WARNING_PREFIX) for w in self.augmented.plan.warnings
                if w.startswith(WARNING_PREFIX)]


def remove_deleted(augmented: Augmented, detections: Detections, intent: Intent,
                   backend: str = "auto", mask_settings: MaskSettings | None = None,
                   settings: InpaintSettings | None = None, inpainter: Any = None,
                   base_model: Any = None) -> Removal:
    """Paint the intent's delete concepts out of ``augmented``'s sources (module docstring).

    ``backend``: "auto" (LaMa if ``inpainter`` is given, else classical), "classical", "lama"
    (needs ``inpainter``) or "diffusion" (needs ``base_model``).
    """
    mask_settings = mask_settings or MaskSettings()
    settings = settings or InpaintSettings()
    chosen, model, choice = choose_backend(backend, inpainter, base_model)
    sources = augmented.sources
    bad = [i.source_index for i in augmented.plan.items
           if not 0 <= i.source_index < len(sources)]
    if bad:
        raise InputError(f"The AUGMENTED plan refers to source image(s) {sorted(set(bad))}, but "
                         f"it holds {len(sources)}; re-run IntentCrop on these images.")
    detections.check_images([s.size for s in sources], "AUGMENTED source images")
    masks = delete_masks(detections, intent, mask_settings, augmented.source_names())

    todo = [m for m in masks.images if m.mask.any()]
    phrases = {c.name: c.phrase for c in intent.concepts}
    started = time.perf_counter()
    # seeds follow the source index, so one image's fill does not depend on the others' masks
    cleaned = inpaint([sources[m.index] for m in todo], [m.mask for m in todo], chosen,
                      settings, model,
                      negatives=[", ".join(phrases[c] for c in m.concepts) for m in todo],
                      seeds=[settings.seed + m.index for m in todo])
    seconds = time.perf_counter() - started
    new_sources = list(sources)
    for image_mask, image in zip(todo, cleaned, strict=True):
        new_sources[image_mask.index] = image

    warnings = masks.all_warnings()
    if augmented.inpaint is not None:
        warnings.insert(0, f"these sources were already inpainted "
                           f"({augmented.inpaint.get('backend')}); they were inpainted again.")
    result = Augmented(
        plan=_updated_plan(augmented.plan, masks, warnings),
        sources=new_sources,
        masks=[m.mask if m.mask.any() else None for m in masks.images],
        inpaint={"backend": chosen.name, **({"choice": choice} if choice else {}),
                 **asdict(mask_settings), **asdict(settings)},
    )
    log.info("IntentInpaint: %d of %d image(s) cleaned with %s in %.1f s", len(todo),
             len(sources), chosen.name, seconds)
    return Removal(result, list(sources), masks, chosen.name, choice, seconds)


def _updated_plan(plan: AugmentPlan, masks: DeleteMasks, warnings: list[str]) -> AugmentPlan:
    plan = plan.model_copy(deep=True)
    for item in plan.items:
        image_mask = masks.images[item.source_index]
        x0, y0, x1, y1 = item.region
        item.removed = [c for c, mask in image_mask.concepts.items()
                        if mask[y0:y1, x0:x1].any()]
        if item.removed:
            item.notes += [w for w in image_mask.warnings if w not in item.notes]
    plan.warnings = [w for w in plan.warnings if not w.startswith(WARNING_PREFIX)]
    plan.warnings += [WARNING_PREFIX + w for w in warnings]
    return plan
