"""What a refiner gets for one training-set item (`CaptionJob`) and what it gives back
(`Refined`). Both refiners (offline rules, LLM) and the checks share these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Operation = Literal["original", "keep", "modify"]
FRAMING = "close-up of the {phrase}"  # the framing phrase of a crop (see refine_offline)


@dataclass
class CaptionJob:
    """One item: its raw captions and what the augmentation stage knows about it."""

    key: str  # the item's image path in the set, for messages ("2_face/x_face_0001.png")
    operation: Operation = "original"
    concept: str | None = None  # the concept a crop shows
    value: str | None = None  # the modify value detection found for a crop ("blonde hair")
    removed: list[str] = field(default_factory=list)  # delete concepts painted out of it
    own: str = ""  # the captioner's caption of this item's image
    source: str | None = None  # for a crop: the caption of the image it was cut from
    # modify concept -> what the other items from the same source image say about it: the
    # values detection found for its crops and their captions' phrases about it
    hints: dict[str, list[str]] = field(default_factory=dict)

    @property
    def is_crop(self) -> bool:
        return self.operation != "original"


@dataclass
class Part:
    """One phrase of a refined caption, with how much it matters when the caption is too long
    (higher stays longer; see `tokens.fit_tokens`)."""

    text: str
    importance: float
    modify: str | None = None  # the modify concept it describes, if any


@dataclass
class Refined:
    trigger: str
    parts: list[Part] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the refiner changed, for the report
    warnings: list[str] = field(default_factory=list)  # what the user should look at
    refiner: str = "offline"  # "offline" or "llm:<model>"

    @property
    def caption(self) -> str:
        return ", ".join([self.trigger, *(p.text for p in self.parts)])
