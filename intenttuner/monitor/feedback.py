"""A person's verdict on sample images: "good" or "bad", kept in the run folder's feedback.jsonl.

One line per mark, appended, never rewritten: ``{"image", "item", "prompt", "step", "mark",
"time"}``, the latest line of an image wins and a ``null`` mark clears it. The history of marks
stays on disk (how an opinion changed is information too), while `marks` gives the current one.
Only images the run's own sample records list can be marked, which also keeps any other path
(``../``, absolute) out of the file. Rating sets (``intenttuner.reward.feedback_set``) keep their
marks the same way, through `add_mark` with the images their own listing knows.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import InputError
from .events import SAMPLE
from .runlog import of_event, read_records

log = logging.getLogger(__name__)

FEEDBACK_FILE = "feedback.jsonl"
MARKS = ("good", "bad")
LINE_FIELDS = ("item", "prompt", "step")  # what a mark line repeats of its image

_append_lock = threading.Lock()  # ComfyUI's server may answer two clicks at once


def sample_images(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Run-relative image path -> its item, prompt, step and seed, from the sample records."""
    images: dict[str, dict[str, Any]] = {}
    for record in of_event(records, SAMPLE):
        for image in record.get("images") or []:
            if isinstance(image, dict) and isinstance(image.get("path"), str):
                images[image["path"]] = {"item": image.get("item"),
                                         "prompt": image.get("prompt"),
                                         "step": record.get("step"),
                                         "seed": image.get("seed")}
    return images


def add_mark(run_dir: str | Path, image: str, mark: str | None,
             records: list[dict[str, Any]] | None = None,
             known: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Mark ``image`` (a sample path of this run, e.g. ``samples/step000010/<item>.png``) as
    "good" or "bad", or clear its mark (None); returns the line written. ``records``: the
    run's metrics records when the caller has read them already. ``known``: the images that
    can be marked (path -> item, prompt, step) when the folder is no run's but keeps its own
    listing (a rating set); then the caller has checked ``image`` against it."""
    run_dir = Path(run_dir)
    if mark is not None and mark not in MARKS:
        raise InputError(f"mark must be 'good', 'bad' or null (to clear the mark), got "
                         f"{mark!r}.")
    check_image_path(image)
    if known is None:
        known = sample_images(read_records(run_dir) if records is None else records)
    if image not in known:
        raise InputError(f"image {image!r} is not a sample image of run {run_dir.name!r}; "
                         "mark one of the images its sample points list (samples/stepNNNNNN/"
                         "<item>.png).")
    record = {"image": image, **{k: known[image].get(k) for k in LINE_FIELDS}, "mark": mark,
              "time": time.time()}
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with _append_lock, (run_dir / FEEDBACK_FILE).open("a", encoding="utf-8") as out:
        out.write(line)
    return record


def marks(run_dir: str | Path) -> dict[str, str]:
    """Image path -> its current mark ("good" / "bad"); cleared and unmarked images are absent.
    Damaged lines are skipped."""
    path = Path(run_dir) / FEEDBACK_FILE
    try:
        lines = path.read_text("utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return {}
    current: dict[str, str] = {}
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict) or not isinstance(record.get("image"), str):
            continue
        if record.get("mark") in MARKS:
            current[record["image"]] = record["mark"]
        else:
            current.pop(record["image"], None)
    return current


def check_image_path(image: object) -> str:
    """``image`` if it is a run-relative POSIX path that stays inside the run folder. Checked
    before the sample lookup, so a path that tries to leave the folder is told so plainly."""
    if not isinstance(image, str) or not image:
        raise InputError(f"image must be a sample path of the run (samples/stepNNNNNN/"
                         f"<item>.png), got {image!r}.")
    parts = PurePosixPath(image).parts
    if "\\" in image or image.startswith("/") or ":" in image or ".." in parts:
        raise InputError(f"image {image!r} must be a path inside the run folder such as "
                         "samples/step000010/<item>.png (no '..', '\\', ':' or leading '/').")
    return image
