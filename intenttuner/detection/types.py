"""DETECTIONS: where each concept of the intent was found in each training image.

Plain, JSON-serialisable data (pydantic), like the intent. Boxes are XYXY in pixels of the
original image they were found in; masks are run-length encoded inside their box's region, so
a detection costs a few hundred bytes however large the image. Detections a filter rejected
stay in the record with ``kept = False`` and the reason, so previews can show them and nothing
disappears silently; later stages use `Detections.kept`.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import InputError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BoxMask(_Model):
    """A binary mask stored inside an integer pixel region ``(x0, y0, x1, y1)`` of its image:
    run lengths over the region's rows (row-major), starting with a run of zeros."""

    region: tuple[int, int, int, int]
    counts: list[int]

    @model_validator(mode="after")
    def _check(self) -> BoxMask:
        x0, y0, x1, y1 = self.region
        if x0 < 0 or y0 < 0 or x1 < x0 or y1 < y0:
            raise ValueError(f"mask region {self.region} is not a valid XYXY pixel region")
        if any(c < 0 for c in self.counts) or sum(self.counts) != (x1 - x0) * (y1 - y0):
            raise ValueError(f"mask run lengths cover {sum(self.counts)} pixels, not the "
                             f"{(x1 - x0) * (y1 - y0)} of region {self.region}")
        return self

    @classmethod
    def encode(cls, mask: np.ndarray, box: tuple[float, float, float, float]) -> BoxMask:
        """Encode full-image ``mask`` (H x W bool), keeping only what lies inside ``box``."""
        height, width = mask.shape
        x0, y0 = max(0, math.floor(box[0])), max(0, math.floor(box[1]))
        x1, y1 = min(width, math.ceil(box[2])), min(height, math.ceil(box[3]))
        flat = mask[y0:y1, x0:x1].astype(bool).ravel()
        changes = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
        bounds = np.concatenate([[0], changes, [flat.size]])
        counts = np.diff(bounds).tolist()
        if flat.size and flat[0]:
            counts = [0, *counts]
        return cls(region=(x0, y0, x1, y1), counts=counts)

    def decode(self, size: tuple[int, int]) -> np.ndarray:
        """The full-image mask (H x W bool) for an image of ``size`` = (width, height)."""
        width, height = size
        x0, y0, x1, y1 = self.region
        values = np.zeros(sum(self.counts), dtype=bool)
        position = 0
        for i, run in enumerate(self.counts):
            if i % 2:
                values[position:position + run] = True
            position += run
        mask = np.zeros((height, width), dtype=bool)
        mask[y0:y1, x0:x1] = values.reshape(y1 - y0, x1 - x0)
        return mask

    @property
    def area(self) -> int:
        return int(sum(self.counts[1::2]))


class Detection(_Model):
    concept: str = Field(description="Name of the intent concept this box shows.")
    value: str | None = Field(default=None,
                              description="For a modify concept detected by one of its values: "
                                          "which value ('black leather jacket').")
    phrase: str = Field(description="The detector phrase that found it.")
    box: tuple[float, float, float, float] = Field(description="XYXY, original image pixels.")
    score: float = Field(description="Detector confidence in [0, 1].")
    touches_border: bool = Field(default=False,
                                 description="The box reaches the image edge: the concept may be "
                                             "cut off by the frame.")
    mask: BoxMask | None = None
    similarity: float | None = Field(default=None,
                                     description="Best cosine similarity to the concept's "
                                                 "reference crops (set by RefFilter).")
    kept: bool = True
    reason: str = Field(default="", description="Why a filter dropped it.")

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


class ImageDetections(_Model):
    index: int = Field(description="Position of the image in the stage's image list.")
    size: tuple[int, int] = Field(description="(width, height) of the image.")
    detections: list[Detection] = Field(default_factory=list)


class Detections(_Model):
    images: list[ImageDetections]
    queries: dict[str, list[str]] = Field(
        default_factory=dict, description="Detector phrase -> concept names it served.")
    box_threshold: float
    text_threshold: float
    filter: dict[str, float | int | str] | None = Field(
        default=None, description="RefFilter settings, once filtered.")
    warnings: list[str] = Field(default_factory=list)

    def kept(self, image: int) -> list[Detection]:
        """The detections of image ``image`` that every filter kept."""
        return [d for d in self.images[image].detections if d.kept]

    def check_images(self, sizes: list[tuple[int, int]], what: str = "images") -> None:
        """Raise unless ``sizes`` are the images these detections were made on."""
        mine = [i.size for i in self.images]
        if mine != list(sizes):
            raise InputError(
                f"The {what} ({len(sizes)} images, sizes {sizes[:3]}...) are not the images the "
                f"detections were made on ({len(mine)} images, sizes {mine[:3]}...). Connect "
                "the same image list to both nodes.")
