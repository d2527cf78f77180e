"""Intent nodes: parse a description (with reference boxes) into an INTENT; save, load, edit it.

The box editor in ``web/js/intent_boxes.js`` draws on IntentParse's reference images and
writes the ``reference_boxes`` widget; the node sends the reference images back to it after
each run (``ui.intenttuner_references``) so boxes can be drawn on any upstream image source.
"""

from __future__ import annotations

from ..intenttuner.errors import InputError
from ..intenttuner.imageio import batch_to_pils, pils_to_batch
from ..intenttuner.intent.parse import ON_LLM_FAILURE, ON_UNPLACED, parse_intent
from ..intenttuner.intent.preview import render_preview, summary
from ..intenttuner.intent.store import (
    apply_edits,
    intent_path,
    list_intents,
    load_intent,
    save_intent,
)
from ..intenttuner.runtime import get_runtime
from . import types
from .schema import ROOT_CATEGORY

CATEGORY = f"{ROOT_CATEGORY}/Intent"
MAX_REFERENCES = 4
EXAMPLE = ("Train a model of a man called Vincent. Keep his face consistent. He should be able "
           "to switch between the black leather jacket [1] and the striped jacket [2]. His hair "
           "colour should be adjustable. Never give him a necklace.")


class _IntentNode:
    """What the nodes producing an intent share: INTENT + preview IMAGE + summary out."""

    CATEGORY = CATEGORY
    RETURN_TYPES = (types.INTENT, "IMAGE", "STRING")
    RETURN_NAMES = ("intent", "preview", "summary")
    OUTPUT_TOOLTIPS = (
        "The intent specification, for every later IntentTuner stage.",
        "The intent as an image: concepts, notes and the labelled reference crops.",
        "The intent as readable text.",
    )


def _outputs(intent, references: list | None = None) -> dict:
    """UI + result of a node producing an intent: preview shown on the node, text below it."""
    preview = render_preview(intent)
    text = summary(intent)
    rt = get_runtime()
    ui = {"images": rt.save_ui_images([preview], "intent"), "text": [text]}
    if references is not None:
        ui["intenttuner_references"] = rt.save_ui_images(references, "reference")
    return {"ui": ui, "result": (intent, pils_to_batch([preview]), text)}


class IntentParse(_IntentNode):
    DISPLAY_NAME = "Intent Parse"
    DESCRIPTION = ("Turns what you want in words — keep, change, remove — and boxes on reference "
                   "images into the intent every IntentTuner stage follows. Works offline; "
                   "connect LLM Settings (an endpoint) or Load Local LLM (in-process) to parse "
                   "with an LLM instead. Write [n] after a concept to bind it to box n.")
    FUNCTION = "parse"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        references = {
            f"reference_{i}": ("IMAGE", {"tooltip": f"Reference image(s) {i}: boxes are drawn "
                                                    "on these (batches count image by image)."})
            for i in range(1, MAX_REFERENCES + 1)}
        return {
            "required": {
                "description": ("STRING", {
                    "multiline": True, "default": EXAMPLE,
                    "tooltip": "What the fine-tuned model should keep, let text change, and "
                               "never produce. 'trigger: <word>' sets the trigger word; [n] "
                               "refers to reference box n."}),
                "on_unplaced": (list(ON_UNPLACED), {
                    "default": "error",
                    "tooltip": "What to do with sentences that give no keep/change/remove "
                               "instruction: stop with an error (safe), or list them in the "
                               "preview and go on."}),
            },
            "optional": {
                **references,
                "reference_boxes": ("STRING", {
                    "multiline": True, "default": "[]",
                    "tooltip": 'Boxes as JSON: [{"image": 0, "box": [x1, y1, x2, y2], '
                               '"label": "jacket"}], pixels of the reference image; box n is '
                               "[n]. Draw them with the box editor on this node."}),
                "llm": (types.LLM, {"tooltip": "Optional LLM: an endpoint (LLM Settings) or a "
                                               "local model (Load Local LLM). Without it the "
                                               "offline parser runs."}),
                "if_llm_fails": (list(ON_LLM_FAILURE), {
                    "default": "error",
                    "tooltip": "When the LLM is unreachable or answers nonsense: stop with its "
                               "error, or fall back to the offline parser (noted in the "
                               "preview)."}),
            },
        }

    def parse(self, description: str, on_unplaced: str, reference_boxes: str = "[]",
              llm=None, if_llm_fails: str = "error", **references):
        images = [image for i in range(1, MAX_REFERENCES + 1)
                  if references.get(f"reference_{i}") is not None
                  for image in batch_to_pils(references[f"reference_{i}"])]
        intent = parse_intent(description, images, reference_boxes, llm,
                              on_unplaced=on_unplaced, on_llm_failure=if_llm_fails)
        return _outputs(intent, images)


class IntentSave:
    DISPLAY_NAME = "Intent Save"
    DESCRIPTION = ("Saves the intent as JSON in output/intents (never overwriting), to reuse, "
                   "edit by hand or share. API keys are never part of an intent.")
    CATEGORY = CATEGORY
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("path",)
    OUTPUT_TOOLTIPS = ("Where the file was written.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "intent": (types.INTENT, {"tooltip": "The intent to save."}),
            "filename_prefix": ("STRING", {
                "default": "intent",
                "tooltip": "File name start; a counter is appended (intent_00001.json). "
                           "Sub-folders of output/intents are allowed ('vincent/intent')."}),
            "with_crops": ("BOOLEAN", {
                "default": True,
                "tooltip": "Store the reference crops in the file, so Reference Filter works "
                           "without the reference images (larger file). Off: boxes, labels and "
                           "concepts only, no pixels; the form to share when a crop shows a "
                           "real person's face."}),
        }}

    def save(self, intent, filename_prefix: str, with_crops: bool):
        path = save_intent(intent, filename_prefix, with_crops=with_crops)
        return {"ui": {"text": [str(path)]}, "result": (str(path),)}


class IntentLoad(_IntentNode):
    DISPLAY_NAME = "Intent Load"
    DESCRIPTION = "Loads an intent saved by Intent Save (output/intents) or put in input/intents."
    FUNCTION = "load"
    # The dropdown's only entry while nothing is saved: ComfyUI refuses an empty list, and
    # this says what to do instead of "Value not in list".
    NOTHING_SAVED = ("(no saved intents: run Intent Save first, or put .json files in "
                     "input/intents)")
    _SAVE_FIRST = ("run a workflow with Intent Save first, or put .json intent files in "
                   "input/intents, then refresh the page and pick one in Intent Load's file list.")

    @classmethod
    def INPUT_TYPES(cls):
        files = list_intents() or [cls.NOTHING_SAVED]
        return {"required": {"file": (files, {
            "tooltip": "A saved intent: output/intents/... or input/intents/... (refresh the "
                       "page after saving a new one)."})}}

    @classmethod
    def VALIDATE_INPUTS(cls, file: str):
        """Replaces ComfyUI's "Value not in list" for ``file`` with what to do about it."""
        try:
            intent_path(cls._checked(file))
        except InputError as exc:
            if file != cls.NOTHING_SAVED and not list_intents():  # e.g. a shared workflow
                return f"intent file '{file}' does not exist, and no intent is saved yet: " \
                       + cls._SAVE_FIRST
            return str(exc)
        return True

    @classmethod
    def IS_CHANGED(cls, file: str):
        try:
            return intent_path(file).stat().st_mtime
        except Exception:  # noqa: BLE001 - ComfyUI reports the error when the node runs
            return float("nan")

    def load(self, file: str):
        return _outputs(load_intent(self._checked(file)))

    @classmethod
    def _checked(cls, file: str) -> str:
        if file == cls.NOTHING_SAVED:
            raise InputError(f"No intent is saved yet: {cls._SAVE_FIRST}")
        return file


class IntentEdit(_IntentNode):
    DISPLAY_NAME = "Intent Edit"
    DESCRIPTION = ("Changes an intent with a JSON merge patch, e.g. a new trigger word, another "
                   "value for a concept, or a concept removed, and checks the result again.")
    FUNCTION = "edit"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "intent": (types.INTENT, {"tooltip": "The intent to change."}),
            "edits": ("STRING", {
                "multiline": True,
                "default": '{\n  "concepts": {}\n}',
                "tooltip": 'JSON merge patch. Examples: {"trigger_words": ["vncnt"]}; '
                           '{"concepts": {"necklace": null}} removes a concept; {"concepts": '
                           '{"hair colour": {"values": [{"text": "red hair", "references": []},'
                           ' {"text": "grey hair", "references": []}]}}} edits one.'}),
        }}

    def edit(self, intent, edits: str):
        return _outputs(apply_edits(intent, edits))


NODES = [IntentParse, IntentSave, IntentLoad, IntentEdit]
