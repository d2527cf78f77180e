"""Re-save the shipped workflows through the real ComfyUI frontend, with their thumbnails.

    COMFYUI_PATH=<ComfyUI checkout> .venv/bin/python scripts/export_workflows.py [name ...]

For each `workflows/<name>.json` (all of them without names): start ComfyUI with this pack, load
the workflow in headless Chromium, put its one-line description in a note at the top, save it
the way the frontend's own Export does (so it matches the frontend's schema: no nulls where it
wants lists or numbers), drop the saved view so the frontend fits every node into whatever window
opens it, and write `<name>.jpg`, the canvas as the frontend draws it, for the template browser.
Run it after changing a workflow by hand or after a frontend upgrade; the browser test
(tests/test_browser_workflows.py) fails when a shipped workflow would alarm a user.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from tests.browser_harness import WORKFLOWS, Frontend, shipped_workflows  # noqa: E402
from tests.comfyui_harness import ComfyServer, comfyui_location  # noqa: E402

# One line each: what the workflow shows. The frontend's template browser (1.35) titles custom
# templates by file name only, so the line goes into the workflow itself, as its first node.
DESCRIPTIONS = {
    "intent_parse_offline": "State an intent in plain words with a reference box; no model or "
                            "network needed. Saves it to output/intents.",
    "intent_parse_llm": "The same intent parsed by any OpenAI-compatible LLM (key from an "
                        "environment variable), falling back to the offline parser.",
    "intent_edit": "Change a parsed intent with a JSON merge patch (new trigger word, a concept "
                   "removed) and save the result.",
    "intent_load": "Load a saved intent from output/intents and preview its concepts.",
    "concept_detect": "Find every concept of an intent in training images (GroundingDINO + SAM) "
                      "and keep the detections that match your reference boxes.",
    "augment": "Intent-guided augmentation: load a training folder, find the concepts, crop "
               "kept and small modified ones, paint deleted ones out, save a kohya training set.",
    "intent_parse_local": "The same intent parsed by a small instruction-tuned LLM running "
                          "inside ComfyUI (Qwen2.5, models/LLM): no server, no API key.",
    "captions": "Intent-aligned captions for a training set (run augment first): Florence-2 "
                "captions refined by the intent's rules, then reviewed and edited by hand.",
    "train_lora": "Train a LoRA on a captioned training set (run captions first), then generate "
                  "with it on the same checkpoint through ComfyUI's own LoRA loading.",
    "train_monitor": "Train a LoRA watched by its intent (run captions first): samples scored "
                     "as it trains, live curves, samples to mark, Stop and keep the best "
                     "checkpoint.",
    "evaluate": "Score the trained LoRA against its base checkpoint (run train_lora first): "
                "generate from the intent's evaluation prompts, then compare stability, "
                "controllability and delete leakage.",
    "full_pipeline": "The whole pipeline on the example character: intent, detection, crops and "
                     "inpainting, captions, LoRA training watched by the monitor, then base vs "
                     "LoRA scored and reported.",
    "baseline_lora": "The plain-LoRA baseline beside full_pipeline: the same images, originals "
                     "only with plain captions, trained without the monitor, then scored by the "
                     "same intent.",
    "prompt_adapt": "Adapt the intent's evaluation prompts with Promptist, keeping the intent; "
                    "generate plain and adapted with the same seeds; Prompt Reward says whether "
                    "it helped.",
    "rate_images": "Generate the intent's evaluation prompts with the trained LoRA and mark "
                   "each image good or bad in the gallery on Rate Images (run train_lora "
                   "first).",
    "reward_finetune": "Learn from your marks (run rate_images and mark first): train a reward "
                       "model on them, then fine-tune the LoRA weighted by mark and reward, "
                       "kept on its training set; before/after compared.",
}
NOTE_TITLE = "About this workflow"
THUMBNAIL_SIZE = (640, 400)  # the template browser shows cards of about this size
# The thumbnail is drawn large, at full detail (no low-detail nodes when zoomed out) and without
# the minimap over the canvas, then cut to the nodes and scaled down.
THUMBNAIL_VIEW = {"viewport": (1920, 1200),
                  "settings": {"Comfy.Minimap.Visible": False,
                               "LiteGraph.Canvas.MinFontSizeForLOD": 0}}
MARGIN = 16  # CSS pixels around the nodes in the thumbnail


def describe(workflow: dict, text: str) -> dict:
    """Put ``text`` in the workflow's note (added above the other nodes when missing)."""
    nodes = workflow["nodes"]
    note = next((n for n in nodes if n["type"] == "MarkdownNote"
                 and n.get("title") == NOTE_TITLE), None)
    if note is None:
        left = min(n["pos"][0] for n in nodes)
        top = min(n["pos"][1] for n in nodes)
        workflow["last_node_id"] += 1
        note = {"id": workflow["last_node_id"], "type": "MarkdownNote", "title": NOTE_TITLE,
                "pos": [left, top - 150], "size": [520, 100], "flags": {}, "order": 0,
                "mode": 0, "inputs": [], "outputs": [], "properties": {}}
        nodes.insert(0, note)
    note["widgets_values"] = [text]
    return workflow


def without_nulls(value):
    """``value`` less every null field. Older saves wrote null for optional fields (links,
    slot_index, reroutes, ...) that the frontend's schema wants absent or typed, and the
    frontend keeps a loaded node's fields as they were, so they must go before loading."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def thumbnail(png: bytes) -> bytes:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.thumbnail(THUMBNAIL_SIZE, Image.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


def export(names: list[str]) -> None:
    checkout, _ = comfyui_location()
    workflows = shipped_workflows()
    unknown = sorted(set(names) - set(workflows))
    if unknown:
        raise SystemExit(f"no such workflow: {', '.join(unknown)} (have: {', '.join(workflows)})")
    with tempfile.TemporaryDirectory() as base:
        (Path(base) / "input").mkdir()
        (Path(base) / "input" / "example.png").write_bytes(
            (checkout / "input" / "example.png").read_bytes())
        with ComfyServer(Path(base)) as server, Frontend(server, **THUMBNAIL_VIEW) as frontend:
            for name in names or list(workflows):
                if name not in DESCRIPTIONS:
                    raise SystemExit(f"add a one-line description of {name} to DESCRIPTIONS")
                frontend.load_workflow(describe(without_nulls(workflows[name]), DESCRIPTIONS[name]))
                # the frontend exports an unconnected optional input as "link": null
                saved = without_nulls(frontend.exported_workflow())
                saved.get("extra", {}).pop("ds", None)  # no saved view: the frontend fits it
                (WORKFLOWS / f"{name}.json").write_text(json.dumps(saved, indent=2) + "\n")
                frontend.load_workflow(saved)  # the view a user gets on opening it
                rects = frontend.node_rects().values()
                x, y = min(r[0] for r in rects) - MARGIN, min(r[1] for r in rects) - MARGIN
                x2, y2 = max(r[2] for r in rects) + MARGIN, max(r[3] for r in rects) + MARGIN
                shot = frontend.page.screenshot(
                    clip={"x": max(x, 0), "y": max(y, 0), "width": x2 - max(x, 0),
                          "height": y2 - max(y, 0)})
                (WORKFLOWS / f"{name}.jpg").write_bytes(thumbnail(shot))
                print(f"{name}: {len(saved['nodes'])} nodes, thumbnail written")


if __name__ == "__main__":
    export(sys.argv[1:])
