"""Reading saved workflows: ComfyUI's UI format (what Save and drag-and-drop use: ``nodes`` and
``links``) and its API format (what Export (API) writes and ``/prompt`` takes:
``{"<node id>": {"class_type": ..., "inputs": {...}}}``). PNGs ComfyUI saved carry both in their
text chunks; the UI one is read first, as the frontend does when an image is dropped."""

from __future__ import annotations

import json
from pathlib import Path

from intenttuner.errors import InputError

SAVE_HINT = "save it from ComfyUI with Workflow → Save (or Export (API))"


def load_workflow(path: Path) -> dict:
    """The workflow in ``path`` (a .json file, or a PNG ComfyUI saved), UI or API format."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"workflow file {path} does not exist — give the path of a saved "
                         "workflow (.json)")
    text = _png_workflow(path) if path.suffix.lower() == ".png" else _read_text(path)
    try:
        workflow = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"workflow file {path} is not JSON ({exc.msg}, line {exc.lineno} "
                         f"column {exc.colno}) — {SAVE_HINT}") from None
    if not (is_ui_format(workflow) or is_api_format(workflow)):
        raise InputError(f"{path} is JSON but not a ComfyUI workflow (neither 'nodes' and "
                         f"'links' nor API-format nodes with 'class_type') — {SAVE_HINT}")
    return workflow


def is_api_format(workflow: object) -> bool:
    """An API prompt: every value is a node with a ``class_type`` and ``inputs``."""
    return (isinstance(workflow, dict) and bool(workflow)
            and all(isinstance(node, dict) and "class_type" in node
                    and isinstance(node.get("inputs", {}), dict) for node in workflow.values()))


def is_ui_format(workflow: object) -> bool:
    """A workflow as the frontend saves it: a list of nodes and a list of links."""
    return (isinstance(workflow, dict) and isinstance(workflow.get("nodes"), list)
            and isinstance(workflow.get("links", []), list))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"workflow file {path} is not a text file — {SAVE_HINT}") from None


def _png_workflow(path: Path) -> str:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            chunks = dict(getattr(image, "text", {}) or {})
    except (UnidentifiedImageError, OSError):
        raise InputError(f"{path} is not a readable PNG — {SAVE_HINT}") from None
    for key in ("workflow", "prompt"):
        if key in chunks:
            return chunks[key]
    raise InputError(f"{path} holds no ComfyUI workflow (no 'workflow' or 'prompt' text in the "
                     f"PNG: only images saved by ComfyUI's Save Image carry one) — {SAVE_HINT}")
