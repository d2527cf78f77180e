"""Feedback sets: images with their prompts and a person's current mark on each.

Two kinds, read alike: a *rating set* (Rate Images) is ``<output>/intenttuner/feedback/<name>/``
with ``images/<key>.png``, their listing ``images.jsonl`` and the marks; a *run* set is a LoRA
run folder, whose monitor sample records list the images and whose ``feedback.jsonl`` holds
the marks made in the training monitor. The marks of both are one file format, written by
`intenttuner.monitor.feedback` (append only, the latest line of an image wins), so the reward
model reads a run's marks and a rating set's the same way.

An image's key is the hash of its PNG bytes and its prompt: rating the same picture with the
same prompt again finds its file and its marks, while the same picture under another prompt is
another example (a mark judges an image *for* a prompt). Files are never rewritten.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ..dataset.naming import plain_name
from ..errors import InputError
from ..monitor import feedback
from ..monitor.history import find_run_dir
from ..monitor.runlog import read_records
from ..runtime import get_runtime
from ..training.run_folder import METRICS_FILE

log = logging.getLogger(__name__)

RATINGS_DIR = ("intenttuner", "feedback")  # under runtime.output_dir()
IMAGES_FILE = "images.jsonl"
IMAGES_FOLDER = "images"
RUN_PREFIX = "run:"  # "run:<run>" names a run's marks; rating set names never hold ':'
KEY_LENGTH = 16  # hex digits of sha256: 64 bits, no collision among any person's ratings
KINDS = ("rating", "run")

_lock = threading.Lock()  # two Rate Images (or two clicks) at once append one at a time


@dataclass(frozen=True)
class MarkedImage:
    path: Path  # the image file
    image: str  # relative to the set's folder: the key of its feedback.jsonl lines
    prompt: str | None
    mark: str | None  # "good", "bad", or None (unmarked or skipped)
    source: str  # the set's name
    seed: int | None


@dataclass
class FeedbackSet:
    folder: Path
    name: str
    kind: str  # "rating" (Rate Images) | "run" (a LoRA run's monitor marks)

    @property
    def label(self) -> str:
        """The name `open_feedback_set` and `list_feedback_sets` use: runs are ``run:<run>``."""
        return RUN_PREFIX + self.name if self.kind == "run" else self.name

    def listing(self) -> dict[str, dict[str, Any]]:
        """Image path -> its item, prompt, step and seed, in the order the set lists them."""
        if self.kind == "run":
            return feedback.sample_images(read_records(self.folder))
        return _read_listing(self.folder / IMAGES_FILE)

    def items(self) -> list[MarkedImage]:
        """Every image the set lists, with its current mark."""
        marks = feedback.marks(self.folder)
        return [MarkedImage(path=self.folder / image, image=image, prompt=entry.get("prompt"),
                            mark=marks.get(image), source=self.name, seed=entry.get("seed"))
                for image, entry in self.listing().items()]

    def marked(self) -> list[MarkedImage]:
        """The images marked good or bad (what a reward model learns from)."""
        return [item for item in self.items() if item.mark is not None]

    def counts(self) -> dict[str, int]:
        return _counts(self.items())

    def summary(self) -> str:
        counts = self.counts()
        kind = "training run" if self.kind == "run" else "rating set"
        return (f"Feedback from {kind} '{self.name}': {sum(counts.values())} image(s), "
                f"{counts['good']} good, {counts['bad']} bad, {counts['unmarked']} unmarked.")

    def fingerprint(self, listing: bool = True) -> str:
        """Changes when a mark changes (``listing``: or the images the set lists), for the
        nodes' IS_CHANGED: what follows them re-runs with the new marks."""
        digest = hashlib.sha256()
        names = [feedback.FEEDBACK_FILE]
        if listing:
            names.append(METRICS_FILE if self.kind == "run" else IMAGES_FILE)
        for name in names:
            try:
                digest.update((self.folder / name).read_bytes())
            except FileNotFoundError:
                pass
            digest.update(b"\0")
        return digest.hexdigest()


def ratings_root() -> Path:
    return get_runtime().output_dir().joinpath(*RATINGS_DIR)


def check_set_name(name: object) -> str:
    """``name`` as a rating set's folder name (`dataset.naming.plain_name`)."""
    return plain_name(name, "feedback_set", "my_ratings",
                      "rating sets are kept in the output folder's intenttuner/feedback/")


def rating_set(name: str, create: bool = True) -> FeedbackSet:
    """The rating set ``name`` (made when ``create``; else it must exist)."""
    safe = check_set_name(name)
    folder = ratings_root() / safe
    if create:
        (folder / IMAGES_FOLDER).mkdir(parents=True, exist_ok=True)
    elif not folder.is_dir():
        raise InputError(f"No feedback set named {safe!r}; {_choices()}")
    return FeedbackSet(folder=folder, name=safe, kind="rating")


def open_feedback_set(folder_or_name: str | os.PathLike) -> FeedbackSet:
    """A rating set by name, a run's marks by ``run:<run>`` (or by the run's name when no
    rating set has it), or a folder (a `Path`): a rating set's or a run's. Strings are names
    only, never paths, so a name from a request cannot reach another folder."""
    if isinstance(folder_or_name, os.PathLike):
        return _from_folder(Path(folder_or_name))
    if not isinstance(folder_or_name, str) or not folder_or_name.strip():
        raise InputError(f"feedback set must be a name such as 'my_ratings' or 'run:<run>'; "
                         f"got {folder_or_name!r}.")
    name = folder_or_name.strip()
    if name.startswith(RUN_PREFIX):
        return _run_set(name.removeprefix(RUN_PREFIX))
    safe = check_set_name(name)
    if (ratings_root() / safe).is_dir():
        return rating_set(safe, create=False)
    try:
        return _run_set(name)
    except InputError:
        raise InputError(f"No feedback set or training run named {name!r}; "
                         f"{_choices()}") from None


def add_images(fs: FeedbackSet, images: Sequence[Image.Image], prompts: Sequence[str | None],
               seeds: Sequence[int | None] | None = None) -> list[str]:
    """Add ``images`` (one prompt, and seed, each) to the rating set ``fs``; returns each
    one's path in the set (``images/<key>.png``), in order. An image already there (same
    pixels, same prompt) keeps its file, listing and marks; nothing is rewritten."""
    if fs.kind != "rating":
        raise InputError(f"Images are added to rating sets only; '{fs.label}' is a training "
                         "run's, whose images are its monitor's samples.")
    seeds = [None] * len(images) if seeds is None else list(seeds)
    if not len(prompts) == len(seeds) == len(images):
        raise InputError(f"add_images needs one prompt and one seed per image: {len(images)} "
                         f"image(s), {len(prompts)} prompt(s), {len(seeds)} seed(s).")
    added: list[str] = []
    with _lock:
        listed = fs.listing()
        (fs.folder / IMAGES_FOLDER).mkdir(parents=True, exist_ok=True)
        lines = []
        for picture, prompt, seed in zip(images, prompts, seeds, strict=True):
            prompt = prompt.strip() if isinstance(prompt, str) and prompt.strip() else None
            png = _png_bytes(picture)
            image = f"{IMAGES_FOLDER}/{content_key(png, prompt)}.png"
            added.append(image)
            if image in listed:
                continue
            _write_new(fs.folder / image, png)
            entry = {"item": Path(image).stem, "prompt": prompt, "step": None,
                     "seed": None if seed is None else int(seed)}
            listed[image] = entry
            lines.append(json.dumps({"image": image, **entry}, ensure_ascii=False) + "\n")
        if lines:
            with (fs.folder / IMAGES_FILE).open("a", encoding="utf-8") as out:
                out.write("".join(lines))
    return added


def set_mark(fs: FeedbackSet, image: str, mark: str | None) -> dict[str, Any]:
    """Mark ``image`` (a path the set lists) "good" or "bad", or clear it (None: skipped);
    returns the feedback.jsonl line written."""
    known = fs.listing()
    if image not in known:
        raise InputError(f"image {image!r} is not an image of feedback set '{fs.label}' "
                         f"({len(known)} image(s)); mark one the set lists (images/<key>.png "
                         "for a rating set, samples/stepNNNNNN/<item>.png for a run).")
    return feedback.add_mark(fs.folder, image, mark, known=known)


def list_feedback_sets() -> list[dict[str, Any]]:
    """The rating sets, then the runs that have marks, each newest first: ``{"name" (for
    `open_feedback_set`), "set", "kind", "counts", "images"}``."""
    found: list[tuple[int, float, FeedbackSet]] = []
    root = ratings_root()
    if root.is_dir():
        for folder in root.iterdir():
            if (folder / IMAGES_FILE).is_file():
                found.append((0, _mtime(folder), FeedbackSet(folder, folder.name, "rating")))
    seen: set[str] = set()
    for loras in get_runtime().model_dirs("loras"):
        for marks in sorted(Path(loras).glob(f"*/{feedback.FEEDBACK_FILE}")):
            run = marks.parent
            if run.name not in seen and (run / METRICS_FILE).is_file():
                seen.add(run.name)  # a name in two LoRA folders is the first's, as runs are
                found.append((1, _mtime(run), FeedbackSet(run, run.name, "run")))
    found.sort(key=lambda entry: (entry[0], -entry[1]))
    out = []
    for _, _, fs in found:
        items = fs.items()
        out.append({"name": fs.label, "set": fs.name, "kind": fs.kind, "counts": _counts(items),
                    "images": len(items)})
    return out


def content_key(png: bytes, prompt: str | None) -> str:
    digest = hashlib.sha256(png)
    digest.update(b"\0" + (prompt or "").encode("utf-8"))
    return digest.hexdigest()[:KEY_LENGTH]


# --- helpers -----------------------------------------------------------------------------------


def _run_set(run: str) -> FeedbackSet:
    folder = find_run_dir(run, get_runtime().model_dirs("loras"))
    return FeedbackSet(folder=folder, name=folder.name, kind="run")


def _from_folder(folder: Path) -> FeedbackSet:
    if (folder / IMAGES_FILE).is_file():
        return FeedbackSet(folder=folder, name=folder.name, kind="rating")
    if (folder / METRICS_FILE).is_file():
        return FeedbackSet(folder=folder, name=folder.name, kind="run")
    raise InputError(f"{folder} is no feedback set: it has neither {IMAGES_FILE} (a rating "
                     f"set of Rate Images) nor {METRICS_FILE} (a LoRA run folder).")


def _read_listing(path: Path) -> dict[str, dict[str, Any]]:
    """``images.jsonl``: the first line of an image wins (the file is appended to only);
    damaged lines are skipped, as damaged mark lines are."""
    try:
        lines = path.read_text("utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return {}
    listed: dict[str, dict[str, Any]] = {}
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        image = record.get("image") if isinstance(record, dict) else None
        if not isinstance(image, str) or image in listed:
            continue
        try:
            feedback.check_image_path(image)  # a hand-edited listing stays inside the folder
        except InputError:
            continue
        listed[image] = {k: record.get(k) for k in ("item", "prompt", "step", "seed")}
    return listed


def _png_bytes(picture: Image.Image) -> bytes:
    """The PNG the set keeps, without metadata, so the same pixels give the same bytes."""
    if not isinstance(picture, Image.Image):
        raise InputError(f"add_images takes PIL images; got {type(picture).__name__}.")
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="PNG", compress_level=4)
    return buffer.getvalue()


def _write_new(path: Path, data: bytes) -> None:
    """``path`` unless it exists (a key is its content: the file there is this image); through
    a temporary file, so a reader never sees half a PNG."""
    if path.exists():
        return
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _counts(items: Sequence[MarkedImage]) -> dict[str, int]:
    counts = {"good": 0, "bad": 0, "unmarked": 0}
    for item in items:
        counts[item.mark or "unmarked"] += 1
    return counts


def _mtime(folder: Path) -> float:
    times = [p.stat().st_mtime for p in (folder / feedback.FEEDBACK_FILE, folder / IMAGES_FILE,
                                         folder / METRICS_FILE) if p.is_file()]
    return max(times, default=0.0)


def _choices() -> str:
    names = [entry["name"] for entry in list_feedback_sets()]
    if not names:
        return ("there is none yet: queue Rate Images with images and prompts, or mark samples "
                "in a training monitor.")
    shown = ", ".join(repr(n) for n in names[:10]) + (", ..." if len(names) > 10 else "")
    return f"choose one of {shown}."
