"""Caption Review: see every caption of a training set and edit it before training.

The panel in ``web/js/caption_review.js`` shows each item's thumbnail and caption after a run
(``ui.it_thumbnails``, ``ui.it_captions``) and writes what you type into the ``edits`` widget
as JSON, saved with the workflow. Changing that widget re-runs this node and what follows it;
upstream nodes keep ComfyUI's cached outputs, so nothing is captioned or detected again (Load
Training Set's fingerprint leaves out the captions the pack writes; tested in
tests/test_captions_review_comfyui.py).
"""

from __future__ import annotations

from ..intenttuner.captions.contact_sheet import panel_thumbnails, render_contact_sheet
from ..intenttuner.captions.review import apply_edits, parse_edits, review_entries
from ..intenttuner.imageio import pils_to_batch
from ..intenttuner.runtime import get_runtime
from . import types
from .schema import ROOT_CATEGORY

CATEGORY = f"{ROOT_CATEGORY}/Captions"
# Thumbnails sent to the panel per run; later items are listed with their captions only.
MAX_PANEL_THUMBNAILS = 500


class CaptionReview:
    DISPLAY_NAME = "Caption Review"
    DESCRIPTION = ("Shows every image of the training set with its caption, to read and fix "
                   "before training. Type into a caption in the panel and queue again: the edit "
                   "is written to the set's .txt file and dataset.json (caption_source "
                   "'user'). Edits are kept in the workflow, keyed by image content, so they "
                   "re-apply when upstream nodes rewrite the set; 'Discard edit' writes back "
                   "the caption the set came in with. Captions edited outside ComfyUI are "
                   "never overwritten.")
    CATEGORY = CATEGORY
    FUNCTION = "review"
    OUTPUT_NODE = True  # the panel fills even when nothing is connected downstream yet
    RETURN_TYPES = (types.TRAINING_SET, "IMAGE", "STRING")
    RETURN_NAMES = ("training_set", "contact_sheet", "summary")
    OUTPUT_TOOLTIPS = (
        "The set with your edits applied (its captions on disk agree), for LoRA Train.",
        "Thumbnails with their captions as one image (the first 30; the panel has all).",
        "How many captions are edited, what was written, and edits that match no image.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "training_set": (types.TRAINING_SET, {
                "tooltip": "The captioned set: from Caption Refine, Save Training Set or Load "
                           "Training Set."}),
            "edits": ("STRING", {
                "multiline": True, "default": "",
                "tooltip": "JSON written by the review panel ({image sha256: caption}); edit "
                           "captions in the panel. Blank: no edits."}),
        }}

    def review(self, training_set, edits: str):
        result = apply_edits(training_set, parse_edits(edits))
        reviewed = result.training_set
        summary = result.summary()
        sheet = render_contact_sheet(reviewed, edited=set(result.edited))
        thumbnails = panel_thumbnails(reviewed, MAX_PANEL_THUMBNAILS)
        ui = {"it_thumbnails": get_runtime().save_ui_images(thumbnails, "caption_review"),
              "it_captions": review_entries(reviewed), "text": [summary]}
        return {"ui": ui, "result": (reviewed, pils_to_batch([sheet]), summary)}


NODES = [CaptionReview]
