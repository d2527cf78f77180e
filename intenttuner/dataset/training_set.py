"""TRAINING_SET: a kohya-layout folder on disk and its ``dataset.json`` manifest.

Layout (what kohya's sd-scripts, OneTrainer and ComfyUI's "Load Image and Text Dataset from
Folder" read)::

    <root>/dataset.json                       this manifest (`TrainingSet` as JSON)
    <root>/<repeats>_<group>/<stem>.png       an item's image, written once, never rewritten
    <root>/<repeats>_<group>/<stem>.txt       its caption (one line, UTF-8)

Captions are the only thing that changes after writing: CaptionRefine calls `set_caption` for
each item it rewrites (the ``.txt`` file, atomically) and then `save_manifest`. Paths in the
manifest are relative to the root ('/'-separated), so a set can be moved or copied whole.

Nothing outside the set is ever read or written through the manifest: every item path must be
exactly ``<group folder>/<file name>`` (`check_set_path`), and every file must really lie inside
the set's folder (`outside_target`; a symlink to elsewhere is refused, one within the set works).
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..augment.types import Operation
from ..errors import InputError
from ..weights.locate import check_relative_name

log = logging.getLogger(__name__)

MANIFEST = "dataset.json"
SCHEMA_VERSION = 1
CaptionSource = Literal["placeholder", "captioner", "refined", "user", "file"]


class _Model(BaseModel):  # the same base as augment.types._Model (kept per package)
    model_config = ConfigDict(extra="forbid")


class TrainingItem(_Model):
    """One image of the set, its caption, and where it came from."""

    # validate_assignment: a path changed after loading is checked like one read from JSON
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    image: str = Field(description="Image file relative to the set root: '2_face/x_0001.png'.")
    caption_file: str = Field(description="Its caption file, relative to the root.")
    caption: str = Field(default="", description="The caption text, as in caption_file.")
    caption_source: CaptionSource = Field(
        default="placeholder",
        description="Who wrote the caption: 'placeholder' (trigger words + concept, written "
                    "with the set), 'captioner' / 'refined' (CaptionRefine), 'user' (edited by "
                    "hand), 'file' (read from a set made elsewhere).")
    raw_caption: str | None = Field(
        default=None, description="What the captioner wrote for this image, before the intent "
                                  "rules (kept so re-refining needs no captioner run).")
    raw_caption_by: str | None = Field(
        default=None, description="Which captioner, task and length bound wrote raw_caption "
                                  "('florence2:Florence-2-base/detailed/128'); 'file' for "
                                  "captions that were on disk.")
    group: str = Field(description="Its group: 'original' or a concept name.")
    repeats: int = Field(ge=1, description="Times the trainer repeats it per epoch (its "
                                           "group's repeats).")
    size: tuple[int, int] | None = Field(default=None, description="(width, height) in px.")
    sha256: str | None = Field(default=None, description="Of the image file as written.")
    # Provenance, copied from the augment plan's CropItem; None for sets made elsewhere.
    source_name: str | None = Field(default=None, description="The training image it was cut "
                                                              "from ('shoot/IMG_0042.jpg').")
    operation: Operation | None = None
    concept: str | None = None
    value: str | None = None
    region: tuple[int, int, int, int] | None = Field(
        default=None, description="XYXY source pixels the item shows.")
    box: tuple[float, float, float, float] | None = Field(
        default=None, description="XYXY source pixels of the detection a crop was planned from.")
    removed: list[str] = Field(default_factory=list,
                               description="Delete concepts painted out of this item.")
    loss_weight: float = Field(
        default=1.0, ge=0, allow_inf_nan=False,
        description="Factor on this item's training loss (1: an ordinary item). Reward "
                    "fine-tuning sets it from the image's mark or predicted reward (Lee et al. "
                    "2023: reward-weighted likelihood); 0 would train nothing on it.")

    @field_validator("image", "caption_file")
    @classmethod
    def _in_a_group_folder(cls, value: str) -> str:
        check_set_path(value)
        return value


class TrainingSet(_Model):
    """The TRAINING_SET socket: the manifest of a set on disk, with the folder it lives in."""

    root: str = Field(default="", exclude=True,
                      description="Absolute path of the set's folder (where it was read or "
                                  "written; not stored, so the set can move).")
    schema_version: Literal[1] = SCHEMA_VERSION
    layout: Literal["kohya"] = "kohya"
    intent: dict[str, Any] | None = Field(
        default=None, description="Intent.public_dict(): the intent without reference crops; "
                                  "None for a set made elsewhere.")
    groups: dict[str, int] = Field(default_factory=dict, description="Group -> repeats.")
    items: list[TrainingItem] = Field(default_factory=list)
    created_at: str = Field(default="", description="ISO 8601 UTC time of writing.")
    settings: dict[str, Any] = Field(default_factory=dict,
                                     description="How repeats were chosen (max_repeats...).")
    augment: dict[str, Any] = Field(default_factory=dict,
                                    description="The augment plan's settings, skipped crops, "
                                                "warnings and inpainting backend.")
    warnings: list[str] = Field(default_factory=list,
                                description="What the writer found (capped repeats...).")
    read_warnings: list[str] = Field(
        default_factory=list, exclude=True,
        description="What reading the folder found (edited captions, extra images...): true of "
                    "this read only, so never saved into dataset.json.")

    @model_validator(mode="after")
    def _caption_files_are_their_own(self) -> TrainingSet:
        """A damaged manifest must not make a caption write land on an image or on another
        item's caption: each caption file is a .txt beside its own image."""
        images = {item.image for item in self.items}
        seen: set[str] = set()
        for item in self.items:
            name = item.caption_file
            if not name.lower().endswith(".txt") or name in images or name in seen:
                raise ValueError(f"item {item.image!r}: caption_file {name!r} must be a .txt "
                                 "file of its own (not an image, not another item's caption)")
            seen.add(name)
        return self

    def all_warnings(self) -> list[str]:
        return [*self.warnings, *self.read_warnings]

    # -- reading the set ---------------------------------------------------------------------
    @property
    def path(self) -> Path:
        if not self.root:
            raise InputError("This training set has no folder; write it (Save Training Set) or "
                             "load it (Load Training Set) first.")
        return Path(self.root)

    @property
    def name(self) -> str:
        return self.path.name

    def image_path(self, item: TrainingItem) -> Path:
        """The item's image file; `InputError` when it leads outside the set (a symlink)."""
        return self._inside(item, item.image)

    def caption_path(self, item: TrainingItem) -> Path:
        """The item's caption file; `InputError` when it leads outside the set (a symlink)."""
        return self._inside(item, item.caption_file)

    def steps_per_epoch(self) -> int:
        """Images a trainer sees per epoch: every item times its repeats."""
        return sum(item.repeats for item in self.items)

    def summary(self) -> str:
        """A few lines for the node: size, groups with their repeats, where captions stand."""
        counts: dict[str, int] = {}
        for item in self.items:
            counts[item.group] = counts.get(item.group, 0) + 1
        groups = ", ".join(f"{g} {counts.get(g, 0)} x {r}" for g, r in self.groups.items())
        sources: dict[str, int] = {}
        for item in self.items:
            sources[item.caption_source] = sources.get(item.caption_source, 0) + 1
        captions = ", ".join(f"{n} {s}" for s, n in sorted(sources.items()))
        lines = [f"{len(self.items)} images in {len(self.groups)} group(s), "
                 f"{self.steps_per_epoch()} per epoch with repeats, at {self.root}",
                 f"groups (images x repeats): {groups}",
                 f"captions: {captions or 'none'}"]
        lines += [f"warning: {w}" for w in self.all_warnings()]
        return "\n".join(lines)

    # -- what CaptionRefine changes ------------------------------------------------------------
    def set_caption(self, item: TrainingItem | int | str, text: str,
                    source: CaptionSource = "refined") -> TrainingItem:
        """Write ``text`` as the caption of ``item`` (the item, its index, or its image path):
        its ``.txt`` file is replaced atomically and the item updated. The image is not
        touched. Call `save_manifest` once after a batch of captions."""
        target = self._find(item)
        caption = clean_caption(text)
        write_text_atomic(self.caption_path(target), caption + "\n")
        target.caption, target.caption_source = caption, source
        return target

    def save_manifest(self) -> Path:
        """Write ``dataset.json`` (atomically) and return its path."""
        path = self.path / MANIFEST
        write_text_atomic(path, self.model_dump_json(indent=2) + "\n")
        return path

    def _inside(self, item: TrainingItem, name: str) -> Path:
        path = self.path / name
        target = outside_target(self.path, path)
        if target is not None:
            raise InputError(f"{MANIFEST} entry {item.image!r}: {name!r} leads outside the set "
                             f"folder {self.root} (to {target}). Replace the link with the file "
                             "itself, or remove the entry from dataset.json.")
        return path

    def _find(self, item: TrainingItem | int | str) -> TrainingItem:
        if isinstance(item, int):
            if not 0 <= item < len(self.items):
                raise InputError(f"Item index {item} is outside this set of {len(self.items)}.")
            return self.items[item]
        image = item.image if isinstance(item, TrainingItem) else item
        for candidate in self.items:
            if candidate.image == image:
                return candidate
        raise InputError(f"{image!r} is not an image of the training set at {self.root}.")

    # -- the manifest file ---------------------------------------------------------------------
    @classmethod
    def from_manifest(cls, root: Path) -> TrainingSet:
        """The set described by ``root/dataset.json`` (the files themselves are not checked
        here; `kohya.read_training_set` does that)."""
        path = root / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path} cannot be read ({exc}). Restore it, or delete it to read "
                             "the folder as a plain kohya set (captions kept, provenance "
                             "lost).") from None
        if isinstance(data, dict) and data.get("schema_version", 1) != SCHEMA_VERSION:
            raise InputError(f"{path} has schema_version {data.get('schema_version')}; this "
                             f"IntentTuner reads version {SCHEMA_VERSION}. Update IntentTuner.")
        try:
            training_set = cls.model_validate(data)
        except ValidationError as exc:
            errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: "
                               f"{e['msg'].removeprefix('Value error, ')}"
                               for e in exc.errors()[:5])
            raise InputError(f"{path} is not a valid training set manifest: {errors}. Fix or "
                             f"remove those entries, or delete {MANIFEST} to read the folder as "
                             "a plain kohya set (captions kept, provenance lost).") from None
        training_set.root = str(root.resolve())
        return training_set


def check_set_path(name: str) -> None:
    """Refuse an item path that is not exactly ``<group folder>/<file name>``, '/'-separated:
    no absolute path, ``..``, drive letter or backslash (it would read or write outside the set,
    or mean different files on Windows and Linux)."""
    check_relative_name(name, "path")
    parts = name.split("/")
    if "\\" in name or len(parts) != 2 or not all(p.strip() for p in parts) or "." in parts:
        raise InputError(f"path {name!r} is not allowed: an item path is '<group folder>/<file "
                         "name>' with '/' (e.g. '2_face/x_0001.png').")


def outside_target(root: Path, path: Path) -> Path | None:
    """Where ``path`` really leads (symlinks and ``..`` resolved) when that is outside ``root``'s
    real path, else None. An unresolvable path (a link loop) counts as outside."""
    try:
        target = path.resolve()
        return None if target.is_relative_to(root.resolve()) else target
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop, on Python < 3.13
        return path


def clean_caption(text: str) -> str:
    """One line, single spaces: kohya reads a caption file's first line only, ComfyUI reads the
    whole file; a one-line caption means the same to both."""
    return re.sub(r"\s+", " ", text).strip()


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``path`` through a temporary file in the same folder and ``os.replace``, so a
    reader never sees half a file and a crash leaves the old one."""
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        temp.write_text(text, encoding="utf-8", newline="\n")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
