"""The intent specification: what the user wants the fine-tuned model to keep, change and drop.

An `Intent` is plain, versioned, JSON-serialisable data (pydantic models), so a saved intent can
be read, edited by hand and reloaded, and every later stage obeys the same object:

- ``trigger_words`` — the token(s) that will summon the subject ("vincent").
- ``domain`` — what kind of subject it is; it selects caption wording and default probes.
- ``concepts`` — each with a detector ``phrase``, a ``granularity`` (attribute | instance |
  imagery), an ``operation`` (keep | modify | delete), the reference boxes ``[n]`` it is bound
  to, and for *modify* the ``values`` text should switch between ("black hair" ↔ "blonde hair").
- ``references`` — the user's boxes on reference images, numbered ``[1]``, ``[2]``... across the
  images in order, each with its crop (a small PNG) computed once, so the intent file is
  self-contained. Crops are optional: `Intent.public_dict` exports the intent without them (the
  form for LoRA metadata and sharing, since a crop often shows a real person's face).

Validation happens once, here: a ``[n]`` with no such box, a modify concept with one value,
the same concept kept and deleted — each is refused with a message that names it.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
from enum import Enum
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import InputError

SCHEMA_VERSION = 1


class Operation(str, Enum):
    KEEP = "keep"  # reproduce it faithfully: absorbed by the trigger word
    MODIFY = "modify"  # let text control it: described in captions, probed at evaluation
    DELETE = "delete"  # never produce it: removed from training images


class Granularity(str, Enum):
    ATTRIBUTE = "attribute"  # a property of something: hair colour, jacket material
    INSTANCE = "instance"  # a thing with a box: face, jacket, necklace, logo
    IMAGERY = "imagery"  # a whole-image quality: lighting, painting style, pose, background blur


class Domain(str, Enum):
    PORTRAIT = "portrait"  # a real person
    CHARACTER = "character"  # a 2D / 3D / anime / cartoon character
    PRODUCT = "product"  # an object for sale: bottle, shoe, bag, logo
    STYLE = "style"  # a painting / illustration / photographic style
    POSE = "pose"  # a pose or action ("superhero landing")
    OBJECT = "object"  # any other specific object or animal
    SCENE = "scene"  # a place or environment
    OTHER = "other"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class ConceptValue(_Strict):
    """One state a *modify* concept can take ("black leather jacket")."""

    text: str = Field(min_length=1, description="How captions and probes name this state.")
    references: list[int] = Field(default_factory=list,
                                  description="Reference boxes [n] showing this state.")

    @field_validator("text")
    @classmethod
    def _clean_text(cls, v: str) -> str:
        return _non_empty(v, "value text")


class Concept(_Strict):
    name: str = Field(min_length=1, description="Short lower-case label, e.g. 'hair colour'.")
    phrase: str = Field(min_length=1,
                        description="What the detector looks for, e.g. 'hair' for hair colour.")
    granularity: Granularity
    operation: Operation
    references: list[int] = Field(default_factory=list,
                                  description="Reference boxes [n] that show this concept.")
    values: list[ConceptValue] = Field(
        default_factory=list,
        description="modify only: the states text should switch between (two or more).")
    source: str = Field(default="", description="The sentence this concept came from.")

    @field_validator("name", "phrase")
    @classmethod
    def _clean_label(cls, v: str) -> str:
        return _non_empty(v, "concept name and phrase").lower()

    @model_validator(mode="after")
    def _check(self) -> Concept:
        if self.values and self.operation is not Operation.MODIFY:
            raise ValueError(f"concept '{self.name}': only modify concepts have values "
                             f"(it is '{self.operation.value}')")
        if len(self.values) == 1:
            raise ValueError(f"concept '{self.name}': give at least two values to switch "
                             f"between, or none (has only '{self.values[0].text}')")
        return self

    def all_references(self) -> list[int]:
        """Every [n] bound to the concept or to one of its values, in order, once."""
        seen: list[int] = []
        for n in [*self.references, *(r for v in self.values for r in v.references)]:
            if n not in seen:
                seen.append(n)
        return seen


class ReferenceBox(_Strict):
    index: int = Field(ge=1, description="The n of [n]: boxes are numbered across images.")
    image: int = Field(ge=0, description="0-based index of the reference image it is drawn on.")
    box: tuple[float, float, float, float] = Field(
        description="XYXY in pixels of that image (x1 < x2, y1 < y2).")
    image_size: tuple[int, int] = Field(description="(width, height) of the reference image.")
    label: str = ""
    crop_png: str | None = Field(default=None,
                                 description="Base64 PNG of the box's crop (longest side <= 384).")

    @model_validator(mode="after")
    def _check_box(self) -> ReferenceBox:
        x1, y1, x2, y2 = self.box
        width, height = self.image_size
        where = f"reference box [{self.index}] {self.box} on a {width}x{height} image"
        if width <= 0 or height <= 0:
            raise ValueError(f"reference box [{self.index}]: image_size {self.image_size} must "
                             "be positive")
        if not all(math.isfinite(v) for v in self.box) or not (x1 < x2 and y1 < y2):
            raise ValueError(f"{where} must be finite with x1 < x2 and y1 < y2")
        if x1 < -1 or y1 < -1 or x2 > width + 1 or y2 > height + 1:
            raise ValueError(f"{where} lies outside its image")
        return self

    def crop(self):
        """The crop as a PIL RGB image (None when the intent was saved without crops)."""
        if self.crop_png is None:
            return None
        from PIL import UnidentifiedImageError

        from ..imageio import open_image, to_rgb_pil

        try:
            return to_rgb_pil(open_image(io.BytesIO(base64.b64decode(self.crop_png))))
        except (ValueError, OSError, UnidentifiedImageError) as exc:
            raise InputError(f"The crop of reference box [{self.index}] in this intent is "
                             f"damaged ({exc}); re-run Intent Parse with the reference "
                             "images.") from None


class Intent(_Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    description: str = Field(description="The user's own words, kept verbatim.")
    trigger_words: list[str] = Field(min_length=1)
    domain: Domain
    concepts: list[Concept] = Field(default_factory=list)
    references: list[ReferenceBox] = Field(default_factory=list)
    unplaced: list[str] = Field(default_factory=list,
                                description="Sentences that could not be turned into a concept.")
    notes: list[str] = Field(default_factory=list,
                             description="What the parser assumed (defaults, fallbacks).")
    parser: str = Field(default="offline", description="'offline' or 'llm:<model>'.")
    _memo: dict = PrivateAttr(default_factory=dict)  # see memo()

    def memo(self) -> dict:
        """A per-process scratch dict for what later stages derive from this intent and want
        to compute once (the reference-crop embeddings per image encoder, in
        detection/ref_filter.py). Never serialised, never compared."""
        return self._memo

    def memoised(self, key: tuple, owners: tuple, compute):
        """``compute()`` once per ``key`` and ``owners`` (the loaded models it depends on),
        kept in `memo` while those models live. An owner's ``id()`` alone could be a reused
        address, so the entry holds weak references to its owners and is recomputed when any
        of them is gone or replaced."""
        import weakref

        full_key = (*key, *(id(owner) for owner in owners))
        cached = self._memo.get(full_key)
        if cached is not None and all(ref() is owner
                                      for ref, owner in zip(cached[0], owners, strict=True)):
            return cached[1]
        value = compute()
        self._memo[full_key] = (tuple(weakref.ref(owner) for owner in owners), value)
        return value

    @field_validator("trigger_words")
    @classmethod
    def _check_triggers(cls, words: list[str]) -> list[str]:
        cleaned = [_clean(w) for w in words]
        for word in cleaned:
            if not word or re.search(r"[,\n\[\]]", word):
                raise ValueError(f"trigger word '{word}' must be non-empty and contain no "
                                 "commas, brackets or line breaks")
        return cleaned

    @model_validator(mode="after")
    def _check_consistency(self) -> Intent:
        indices = [r.index for r in self.references]
        if indices != list(range(1, len(indices) + 1)):
            raise ValueError(f"reference boxes must be numbered 1..{len(indices)} in order, "
                             f"got {indices}")
        for concept in self.concepts:
            for n in concept.all_references():
                if not 1 <= n <= len(self.references):
                    raise ValueError(
                        f"concept '{concept.name}' refers to [{n}], but "
                        + (f"only {len(self.references)} reference box(es) exist"
                           if self.references else "no reference boxes were given"))
        by_name: dict[str, Concept] = {}
        for concept in self.concepts:
            other = by_name.setdefault(concept.name, concept)
            if other is not concept and other.operation is not concept.operation:
                raise ValueError(
                    f"concept '{concept.name}' is both {other.operation.value} "
                    f"('{other.source}') and {concept.operation.value} ('{concept.source}'); "
                    "say which one you mean")
        return self

    # -- queries used by later stages ------------------------------------------------------
    def by_operation(self, operation: Operation) -> list[Concept]:
        return [c for c in self.concepts if c.operation is operation]

    def reference(self, n: int) -> ReferenceBox:
        return self.references[n - 1]

    def missing_crops(self) -> list[int]:
        """The [n] of the reference boxes without a crop (an intent exported or saved without
        crops): RefFilter cannot compare detections with those."""
        return [r.index for r in self.references if r.crop_png is None]

    # -- JSON ------------------------------------------------------------------------------
    def to_json(self, *, with_crops: bool = True, indent: int | None = 2) -> str:
        """The intent as JSON; ``with_crops=False`` leaves out the crops (see `public_dict`)."""
        return self.model_dump_json(indent=indent, exclude=None if with_crops else _CROPS)

    def public_dict(self) -> dict:
        """The intent without pixel data, for wherever it travels beyond this machine.

        Everything stays (trigger words, domain, concepts, reference boxes with their image
        index, XYXY pixel box, image size and label) except the reference crops, which often
        show a real person's face. This is the form to embed in a LoRA's safetensors metadata
        (see `public_json`). It loads back with `from_data` as an intent whose reference boxes
        have no crops: `missing_crops` lists them, the preview says so, and RefFilter asks for
        the reference images instead of failing obscurely.
        """
        return self.model_dump(mode="json", exclude=_CROPS)

    def public_json(self) -> str:
        """`public_dict` as compact JSON (safetensors metadata values are strings)."""
        return self.model_dump_json(exclude=_CROPS)

    @classmethod
    def from_json(cls, text: str, *, what: str = "intent JSON") -> Intent:
        return cls.from_data(parse_json(text, what, dict), what=what)

    @classmethod
    def from_data(cls, data: object, *, what: str = "intent") -> Intent:
        if isinstance(data, dict) and data.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise InputError(f"{what} has schema_version {data.get('schema_version')}; this "
                             f"version of IntentTuner reads version {SCHEMA_VERSION}.")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InputError(f"{what} is not a valid intent:\n{format_validation_error(exc)}") \
                from None

    def save(self, path: Path | str, *, with_crops: bool = True) -> None:
        """Write the intent to the new file ``path``. Never overwrites: the file is created
        exclusively, so an existing file (or one another process creates first) raises
        `IntentFileExistsError` and stays as it was."""
        text = self.to_json(with_crops=with_crops)
        try:
            with open(path, "x", encoding="utf-8") as f:
                f.write(text)
        except FileExistsError:
            raise IntentFileExistsError(
                f"{path} already exists, and saving an intent never overwrites a file. Choose "
                "another file name, or delete the old file first.") from None

    @classmethod
    def load(cls, path: Path | str) -> Intent:
        return cls.from_json(Path(path).read_text(encoding="utf-8"), what=str(path))


class IntentFileExistsError(InputError, FileExistsError):
    """`Intent.save` was given the path of a file that already exists."""


_CROPS = {"references": {"__all__": {"crop_png"}}}  # what the exports without crops leave out


def parse_json(text: str, what: str, kind: type, example: str = "") -> object:
    """``text`` parsed as JSON, which must be a ``kind`` (list or dict); errors name ``what``."""
    hint = f" Example: {example}" if example else ""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} is not valid JSON ({exc}).{hint}") from None
    if not isinstance(data, kind):
        expected = "list" if kind is list else "object"
        raise InputError(f"{what} must be a JSON {expected}.{hint}")
    return data


def format_validation_error(exc: ValidationError) -> str:
    """pydantic's errors as short lines: ``concepts.1.operation: Input should be ...``."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  - {where}: {message}")
    return "\n".join(lines)


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _non_empty(text: str, what: str) -> str:
    cleaned = _clean(text)
    if not cleaned:
        raise ValueError(f"{what} must not be empty or blank")
    return cleaned
