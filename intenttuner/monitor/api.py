"""What the monitor's HTTP routes answer (nodes/comfy_bridge.py serves them; tests call them).

Each function takes what the route received (a query value, the JSON body) and returns a JSON
object; a bad request raises `InputError` naming the field, which the route turns into HTTP 400
``{"error": message}``. Runs are looked up among the runs training now (`registry`) first, then
in the runtime's LoRA folders, by plain name only. The functions block on file reads (and
`run_history` on image writes), so an async server should call them off its event loop.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import InputError
from ..runtime import get_runtime
from . import feedback, history, registry
from .events import SAMPLE
from .grid import save_thumbnails

log = logging.getLogger(__name__)

UI_REF_KEYS = ("filename", "subfolder", "type")


def list_runs() -> dict[str, Any]:
    """``{"runs": [...]}``: the runs training now (newest first), then the runs on disk (newest
    first); each ``{run, status, stopping, step, total_steps, node, prompt_id, started, best}``.
    ``best`` is the end record's best checkpoint (None until the run has ended)."""
    active = registry.active()
    names = {entry.run for entry in active}
    on_disk = [{**run, "stopping": False} for run in history.list_runs(_loras_dirs())
               if run["run"] not in names]
    return {"runs": [_active_summary(entry) for entry in active] + on_disk}


def run_history(run: object) -> dict[str, Any]:
    """``{"run", "status", "events": [{"event", "data"}, ...], "marks": {image path: mark}}``
    of ``run`` (the ``run`` query value). Sample image refs whose UI file is gone (ComfyUI
    empties its temp folder on restart) are saved again from the run folder's PNGs."""
    name = history.check_run_name(run)
    run_dir = _run_dir(name)
    events = history.events(run_dir)
    _refresh_thumbnails(name, run_dir, events)
    entry = registry.get(name)
    status = "running" if entry is not None else history.summary(run_dir)["status"]
    return {"run": name, "status": status, "events": events, "marks": feedback.marks(run_dir)}


def stop_run(body: object) -> dict[str, Any]:
    """Body ``{"run": NAME}``: ask a run training now to stop after its current step, keeping
    its best checkpoint. ``{"run", "stopping": true, "step"}``."""
    fields = request_fields(body, ("run",), "stop a run")
    entry = registry.request_stop(history.check_run_name(fields["run"]))
    return {"run": entry.run, "stopping": True, "step": entry.step}


def mark_sample(body: object) -> dict[str, Any]:
    """Body ``{"run", "image" (a sample path of that run), "mark": "good" | "bad" | null}``:
    record a person's verdict (null clears it). ``{"run", "image", "mark", "marks"}``."""
    fields = request_fields(body, ("run", "image", "mark"), "mark a sample image")
    name = history.check_run_name(fields["run"])
    run_dir = _run_dir(name)
    record = feedback.add_mark(run_dir, fields["image"], fields["mark"])
    return {"run": name, "image": record["image"], "mark": record["mark"],
            "marks": feedback.marks(run_dir)}


def request_fields(body: object, names: tuple[str, ...], purpose: str) -> dict[str, Any]:
    """``body`` if it is a JSON object with exactly the fields ``names`` (each named when it is
    missing or unexpected, so a client bug is found at once, not guessed around)."""
    expected = ", ".join(f"'{n}'" for n in names)
    if not isinstance(body, dict):
        raise InputError(f"To {purpose}, send a JSON object with the field(s) {expected}; got "
                         f"{type(body).__name__}.")
    missing = [n for n in names if n not in body]
    if missing:
        raise InputError(f"To {purpose}, the request needs the field(s) "
                         f"{', '.join(repr(n) for n in missing)} (expected {expected}).")
    unknown = sorted(str(k) for k in body if k not in names)
    if unknown:
        raise InputError(f"Unknown field(s) {', '.join(repr(k) for k in unknown)} in the request "
                         f"to {purpose}; send only {expected}.")
    return body


def _loras_dirs() -> list[Path]:
    return get_runtime().model_dirs("loras")


def _run_dir(name: str) -> Path:
    """A run training now may write outside the LoRA folders (a CLI run's output_dir)."""
    entry = registry.get(name)
    return entry.run_dir if entry is not None else history.find_run_dir(name, _loras_dirs())


def _active_summary(entry: registry.ActiveRun) -> dict[str, Any]:
    return {"run": entry.run, "status": "running", "stopping": entry.stopping,
            "step": entry.step, "total_steps": entry.total_steps, "node": entry.node,
            "prompt_id": entry.prompt_id, "started": entry.started, "best": None}


# (run folder, image path) -> the ref it was saved again as: the event records keep the
# refs of the first save, so without this every history request would save them once more.
_resaved: dict[tuple[str, str], dict[str, str]] = {}
_resaved_lock = threading.Lock()


# ComfyUI's server answers requests in threads of their own: two history requests at once
# would both find the same thumbnails stale and save them together, and ComfyUI numbers a new
# temp file after the ones already there, so both saves would take the same names. One
# refresh at a time: the second then finds the first one's files and saves nothing.
_refresh_lock = threading.Lock()


def _refresh_thumbnails(name: str, run_dir: Path, events: list[dict[str, Any]]) -> None:
    """Point every sample image of ``events`` at a UI file that exists (in place)."""
    runtime = get_runtime()
    with _refresh_lock:
        for event in events:
            if event["event"] != SAMPLE:
                continue
            stale = [image for image in event["data"].get("images") or []
                     if isinstance(image, dict) and not _shown(runtime, run_dir, image)]
            if stale and not _save_again(runtime, name, run_dir, stale):
                return  # the runtime has no UI (it saved nothing): no point reading more PNGs


def _shown(runtime, run_dir: Path, image: dict[str, Any]) -> bool:
    """Whether ``image``'s ref, or the one it was saved again as, can be shown (then the
    image is set to that ref)."""
    ref = {k: image[k] for k in UI_REF_KEYS if k in image}
    if len(ref) == len(UI_REF_KEYS) and runtime.ui_image_exists(ref):
        return True
    with _resaved_lock:
        again = _resaved.get((str(run_dir), str(image.get("path"))))
    if again is not None and runtime.ui_image_exists(again):
        image.update(again)
        return True
    return False


def _save_again(runtime, name: str, run_dir: Path, images: list[dict[str, Any]]) -> bool:
    """Save the run folder PNGs of ``images`` as UI images and point them there; False when the
    runtime saved nothing. An image whose PNG is gone or outside the run folder keeps its ref
    (the panel shows it as missing)."""
    readable, pictures = [], []
    for image in images:
        picture = _read_sample(run_dir, image.get("path"))
        if picture is not None:
            readable.append(image)
            pictures.append(picture)
    if not pictures:
        return True
    refs = save_thumbnails(runtime.save_ui_images, pictures, name)
    if len(refs) != len(pictures):
        return False
    for image, ref in zip(readable, refs, strict=True):
        image.update(ref)
        with _resaved_lock:
            _resaved[(str(run_dir), image["path"])] = dict(ref)
    return True


def _read_sample(run_dir: Path, path: object) -> Image.Image | None:
    try:
        feedback.check_image_path(path)
        with Image.open(run_dir / str(path)) as picture:
            return picture.convert("RGB")
    except (InputError, OSError) as exc:
        log.debug("sample image %s of %s not shown again: %s", path, run_dir, exc)
        return None
