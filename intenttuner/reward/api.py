"""What the feedback routes answer (nodes/comfy_bridge.py serves them under /intenttuner/feedback/;
the Rate Images panel calls them). Like the monitor's routes (`intenttuner.monitor.api`): each
function takes what the route received and returns a JSON object; a bad request raises
`InputError` naming the field (HTTP 400). Sets are looked up by name only, never by path.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..monitor import feedback
from ..monitor.api import request_fields
from ..runtime import get_runtime
from .feedback_set import (
    RUN_PREFIX,
    FeedbackSet,
    check_set_name,
    list_feedback_sets,
    open_feedback_set,
    ratings_root,
    set_mark,
)


def list_sets() -> dict[str, Any]:
    """``{"sets": [{"name", "set", "kind", "counts", "images"}, ...]}``: rating sets, then runs
    with marks (see `list_feedback_sets`)."""
    return {"sets": list_feedback_sets()}


def feedback_set(name: object) -> dict[str, Any]:
    """``{"name", "kind", "exists", "counts", "images": [{"image", "prompt", "mark", "seed",
    "filename", "subfolder", "type"}, ...]}`` of the set ``name`` (the ``name`` query value).
    A rating set not made yet answers empty (``exists`` false): a panel opened before its
    node's first run asks for it. Rating images carry the /view reference of their file in
    the output folder; a run's samples carry none (the training monitor shows those)."""
    fs = _lookup(name)
    if fs is None:
        safe = check_set_name(name)
        return {"name": safe, "kind": "rating", "exists": False,
                "counts": {"good": 0, "bad": 0, "unmarked": 0}, "images": []}
    items = fs.items()
    images = [{"image": item.image, "prompt": item.prompt, "mark": item.mark, "seed": item.seed,
               **view_ref(fs, item.image)} for item in items]
    return {"name": fs.label, "kind": fs.kind, "exists": True, "counts": fs.counts(),
            "images": images}


def mark_image(body: object) -> dict[str, Any]:
    """Body ``{"set", "image", "mark": "good" | "bad" | null}``: record a person's verdict on
    an image of the set (null: skipped, clears an earlier mark). Answers ``{"set", "image",
    "mark", "counts", "marks"}`` (``marks``: every current mark of the set)."""
    fields = request_fields(body, ("set", "image", "mark"), "mark an image")
    fs = open_feedback_set(_name(fields["set"]))
    record = set_mark(fs, fields["image"], fields["mark"])
    return {"set": fs.label, "image": record["image"], "mark": record["mark"],
            "counts": fs.counts(), "marks": feedback.marks(fs.folder)}


def view_ref(fs: FeedbackSet, image: str) -> dict[str, str]:
    """``{"filename", "subfolder", "type": "output"}`` for ComfyUI's /view of a rating image
    (rating sets live in the output folder); {} for images elsewhere."""
    try:
        relative = (fs.folder / image).relative_to(get_runtime().output_dir())
    except ValueError:
        return {}
    return {"filename": relative.name, "subfolder": relative.parent.as_posix(), "type": "output"}


def _lookup(name: object) -> FeedbackSet | None:
    """The set ``name``, or None for a rating set name that has no folder yet."""
    name = _name(name)
    if not name.startswith(RUN_PREFIX) and not (ratings_root() / check_set_name(name)).is_dir():
        try:
            return open_feedback_set(name)  # a run's marks, by the run's name
        except InputError:
            return None
    return open_feedback_set(name)


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"set must be the name of a feedback set (Rate Images' feedback_set, or "
                         f"'run:<run>' for a training run's marks); got {value!r}.")
    return value.strip()

