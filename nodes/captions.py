"""CaptionRefine: captions that follow the intent, written beside the training set's images.

The captioner runs once per image and its raw captions are kept in the set's manifest, so
re-running with other rules, an LLM or another token limit captions nothing again; captions the
user edited (Caption Review, or a text editor) are left alone unless overwrite_user_edits.
"""

from __future__ import annotations

from ..intenttuner.captions.caption_set import CaptionSettings, caption_training_set
from ..intenttuner.captions.contact_sheet import render_contact_sheet
from ..intenttuner.captions.tokens import CLIP_WINDOW
from ..intenttuner.families.captioner import DETAILS
from ..intenttuner.imageio import pils_to_batch
from ..intenttuner.runtime import get_runtime
from . import types
from .schema import ROOT_CATEGORY, combo

CATEGORY = f"{ROOT_CATEGORY}/Captions"


class CaptionRefine:
    DISPLAY_NAME = "Caption Refine"
    DESCRIPTION = ("Writes intent-aligned captions beside the training set's images: the "
                   "trigger word first, kept concepts left undescribed (the trigger absorbs "
                   "them), modified concepts described with their state (from a crop or the "
                   "detection when the captioner missed them), deleted concepts never "
                   "mentioned, crops merged with their source image's caption, and every "
                   "caption shortened to the text encoder's token window. With an LLM the "
                   "edits are made by the LLM and checked; a failed check falls back to the "
                   "offline rules with a warning.")
    CATEGORY = CATEGORY
    FUNCTION = "refine"
    OUTPUT_NODE = True
    RETURN_TYPES = (types.TRAINING_SET, "IMAGE", "STRING")
    RETURN_NAMES = ("training_set", "preview", "report")
    OUTPUT_TOOLTIPS = (
        "The same set, its captions now on disk (.txt beside each image) and in dataset.json.",
        "The images with their new captions.",
        "Per image: the caption, its token count, what was removed or added and why, and "
        "warnings.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        d = CaptionSettings()
        return {
            "required": {
                "training_set": (types.TRAINING_SET, {
                    "tooltip": "From Save Training Set or Load Training Set."}),
                "detail": combo(list(DETAILS), d.detail,
                                "How much the captioner writes (Florence-2: <CAPTION>, "
                                "<DETAILED_CAPTION>, <MORE_DETAILED_CAPTION>; BLIP has one "
                                "style). Longer captions are shortened to max_tokens."),
                "max_tokens": ("INT", {
                    "default": d.max_tokens, "min": 8, "max": 3 * CLIP_WINDOW,
                    "tooltip": "Token limit per caption, start and end tokens included, "
                               "counted with the CLIP tokenizer of SD 1.5 / SDXL. 77 is one "
                               "text-encoder window (what trainers without long-prompt "
                               "support read); the least important phrases are dropped "
                               "first, never the trigger."}),
                "overwrite_user_edits": ("BOOLEAN", {
                    "default": d.overwrite_user_edits,
                    "tooltip": "Off: captions you edited (Caption Review or a text editor) stay "
                               "as they are. On: regenerate them too."}),
                "recaption": ("BOOLEAN", {
                    "default": d.recaption,
                    "tooltip": "Run the captioner again even where the set already holds its "
                               "raw caption from the same captioner and detail."}),
                "max_new_tokens": ("INT", {
                    "default": 0, "min": 0, "max": 1024,
                    "tooltip": "Longest caption the captioner may write, in its own tokens; 0: "
                               "its default for the detail level."}),
                "batch_size": ("INT", {
                    "default": d.batch_size, "min": 1, "max": 64,
                    "tooltip": "Images per captioner call (and items per LLM request). Lower "
                               "it if the GPU runs out of memory."}),
            },
            "optional": {
                "captioner": (types.CAPTIONER, {
                    "tooltip": "From Load Captioner. Without one, the captions already on disk "
                               "are refined (a set captioned elsewhere)."}),
                "intent": (types.INTENT, {
                    "tooltip": "The intent the captions follow; default: the one the set was "
                               "made with (in its dataset.json)."}),
                "llm": (types.LLM, {
                    "tooltip": "From LLM Settings (an endpoint) or Load Local LLM (in-process): "
                               "the LLM rewrites the captions under the same rules, and its "
                               "answers are checked. Without one the offline rules do it."}),
            },
        }

    def refine(self, training_set, detail, max_tokens, overwrite_user_edits, recaption,
               max_new_tokens, batch_size, captioner=None, intent=None, llm=None):
        settings = CaptionSettings(detail=detail, max_tokens=max_tokens, batch_size=batch_size,
                                   overwrite_user_edits=overwrite_user_edits,
                                   recaption=recaption, max_new_tokens=max_new_tokens or None)
        result, report = caption_training_set(training_set, captioner, intent=intent, llm=llm,
                                              settings=settings)
        sheet = render_contact_sheet(result)
        text = report.summary()
        ui = {"images": get_runtime().save_ui_images([sheet], "captions"), "text": [text]}
        return {"ui": ui, "result": (result, pils_to_batch([sheet]), text)}


NODES = [CaptionRefine]
