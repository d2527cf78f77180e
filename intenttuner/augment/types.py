"""What IntentCrop plans, IntentInpaint cleans and the training-set writer saves.

`AugmentPlan` is plain, JSON-serialisable data (no pixels): one `CropItem` per training image to
produce, each an original training image or a crop of one, with its provenance (source file,
concept, operation, box). `Augmented` (the AUGMENTED socket) pairs a plan with the source images
it refers to. Items are cut from the sources when they are needed (`augment.render`), so
IntentInpaint cleans each source image once and every crop of it comes out clean too.

Boxes and regions are XYXY in pixels of the source image (the training image as loaded),
unless a field says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

Operation = Literal["original", "keep", "modify"]
ORIGINAL_GROUP = "original"  # the group of the uncropped training images
CROP_GROUP_SUFFIX = "_crop"  # keeps a concept named like ORIGINAL_GROUP out of it (`crop_group`)


def crop_group(concept: str, concepts: Iterable[str] = ()) -> str:
    """The training-set group of a crop of ``concept``: the concept's name, except that crops
    never join the originals' group. A concept named ``ORIGINAL_GROUP`` gets ``_crop``
    appended ("original_crop"), again while that is the name of another of the intent's
    ``concepts``, so every concept keeps a group of its own."""
    group = concept
    taken = set(concepts) - {concept}
    while group == ORIGINAL_GROUP or (group != concept and group in taken):
        group += CROP_GROUP_SUFFIX
    return group


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CropItem(_Model):
    """One training image to produce: a whole source image, or a crop of one concept in it."""

    source_index: int = Field(description="Position of the source in `Augmented.sources`.")
    source_name: str = Field(description="The source's file name (provenance), e.g. "
                                         "'shoot/IMG_0042.jpg'; 'image_3' when unknown.")
    operation: Operation = Field(description="'original' (the whole image), 'keep' or "
                                             "'modify' (a crop of that concept).")
    concept: str | None = Field(default=None, description="The intent concept a crop shows.")
    value: str | None = Field(default=None, description="For a modify concept found by one of "
                                                        "its values: which value.")
    region: tuple[int, int, int, int] = Field(
        description="XYXY integer source pixels the item shows (the whole image for originals; "
                    "the box plus margin, widened to the aspect ratio, for crops).")
    box: tuple[float, float, float, float] | None = Field(
        default=None, description="The detection box the crop was planned from (source px).")
    out_size: tuple[int, int] = Field(description="(width, height) of the item's image.")
    resample: str = Field(default="lanczos",
                          description="How the region is scaled to out_size ('lanczos', "
                                      "'bicubic', ... or 'none' when sizes are equal).")
    group: str = Field(description="Training-set group: 'original' for originals, else the "
                                   "concept name ('original_crop' for a concept named "
                                   "'original'; see `crop_group`).")
    removed: list[str] = Field(default_factory=list,
                               description="Delete concepts painted out of this item.")
    notes: list[str] = Field(default_factory=list,
                             description="What was decided for this item (upscaled 1.6x, ...).")


class AugmentPlan(_Model):
    items: list[CropItem] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list,
                               description="Crops not made, each with its source, concept and "
                                           "reason ('IMG_1.jpg: face crop 40x30 px is below "
                                           "the 64 px minimum').")
    warnings: list[str] = Field(default_factory=list)
    settings: dict[str, float | int | str | bool] = Field(default_factory=dict)


@dataclass
class Augmented:
    """The AUGMENTED socket: a plan and the source images it cuts its items from.

    ``sources`` are PIL RGB images, the training images in order (cleaned when ``inpaint`` is
    set). ``masks`` holds, per source, the H x W bool mask of what IntentInpaint removed (None
    where nothing was), for previews and checks.
    """

    plan: AugmentPlan
    sources: list  # list[PIL.Image.Image], RGB
    masks: list[np.ndarray | None] = field(default_factory=list)
    inpaint: dict[str, float | int | str] | None = None  # backend and settings, once inpainted

    def __post_init__(self) -> None:
        if not self.masks:
            self.masks = [None] * len(self.sources)

    def source_names(self) -> list[str]:
        """Each source's file name, from the first plan item that refers to it (``image_<i>``
        where none does)."""
        names = [f"image_{i}" for i in range(len(self.sources))]
        for item in reversed(self.plan.items):
            if 0 <= item.source_index < len(names):
                names[item.source_index] = item.source_name
        return names
