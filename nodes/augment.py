"""Augmentation nodes: IntentCrop plans the close-ups of kept and small modified concepts.

Like the detection nodes it takes image *lists* (``INPUT_IS_LIST``), because training images
differ in size; every list item may itself be a batch. Its preview (pages of labelled tiles) is
shown on the node and output as a list of images.
"""

from __future__ import annotations

from ..intenttuner.augment.plan import (
    SMALL_CROP_POLICIES,
    UPSCALE_METHODS,
    CropSettings,
    plan_crops,
)
from ..intenttuner.augment.preview import render_pages, summary
from ..intenttuner.augment.regions import ASPECT_POLICIES
from ..intenttuner.augment.types import Augmented
from ..intenttuner.imageio import batches_to_pils, pils_to_batch
from ..intenttuner.runtime import get_runtime
from . import types
from .schema import ROOT_CATEGORY, combo

CATEGORY = f"{ROOT_CATEGORY}/Augment"
UI_PREVIEWS = 8  # preview pages shown on the node itself (30 tiles each); the output has all


class IntentCrop:
    DISPLAY_NAME = "Intent Crop"
    DESCRIPTION = ("Adds close-ups to the training set as the intent says: a crop of every kept "
                   "concept, and of each modified concept that is small in its image (below "
                   "modify_area), with context margin, a trainer-friendly aspect ratio and a "
                   "minimum size. Deleted and whole-image concepts get no crop. Every original "
                   "image stays in the set; each crop not made is listed with its reason.")
    CATEGORY = CATEGORY
    FUNCTION = "crop"
    OUTPUT_NODE = True
    INPUT_IS_LIST = True
    RETURN_TYPES = (types.AUGMENTED, "IMAGE", "STRING")
    RETURN_NAMES = ("augmented", "preview", "summary")
    OUTPUT_IS_LIST = (False, True, False)
    OUTPUT_TOOLTIPS = (
        "The originals plus the planned crops, each with its source, concept, operation and "
        "box; for Intent Inpaint and Save Training Set.",
        "Pages of labelled tiles: every item as it will be trained on.",
        "Items per group, every crop not made with its reason, and warnings.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        d = CropSettings()
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The training images Concept Detect saw (a "
                                                "batch, or a list of different sizes)."}),
                "detections": (types.DETECTIONS, {"tooltip": "From Concept Detect or "
                                                             "Reference Filter."}),
                "intent": (types.INTENT, {"tooltip": "Says which concepts are kept, modified "
                                                     "or deleted."}),
                "margin": ("FLOAT", {
                    "default": d.margin, "min": 0.0, "max": 2.0, "step": 0.05,
                    "tooltip": "Context around the box on each side, as a fraction of the "
                               "box's width/height (0.25: a quarter of the box)."}),
                "aspect": combo(list(ASPECT_POLICIES), d.aspect,
                                "nearest: widen the crop to the nearest of 1:1, 3:4, 4:3, 2:3, "
                                "3:2 (what trainers bucket well). square: always 1:1. free: "
                                "box + margin as it is. Crops are moved inside the image at "
                                "edges, never padded."),
                "min_size": ("INT", {
                    "default": d.min_size, "min": 16, "max": 4096, "step": 8,
                    "tooltip": "Smallest shorter side of a crop, px (256: kohya's smallest "
                               "bucket). Smaller crops are upscaled or skipped."}),
                "small_crops": combo(list(SMALL_CROP_POLICIES), d.small_crops,
                                     "Crops below min_size: upscale them (up to max_upscale) "
                                     "or skip them (each listed with its reason)."),
                "upscale_method": combo(list(UPSCALE_METHODS), d.upscale_method,
                                        "Resampling for upscaled crops; lanczos keeps edges "
                                        "sharpest."),
                "max_upscale": ("FLOAT", {
                    "default": d.max_upscale, "min": 1.0, "max": 8.0, "step": 0.1,
                    "tooltip": "Largest upscale factor; smaller crops are skipped with the "
                               "reason. 1 never upscales."}),
                "modify_area": ("FLOAT", {
                    "default": d.modify_area, "min": 0.01, "max": 1.0, "step": 0.01,
                    "tooltip": "A modified concept gets a close-up only if its box covers less "
                               "than this share of the image (0.40 = 40%)."}),
                "max_crops_per_concept_per_image": ("INT", {
                    "default": d.max_crops_per_concept_per_image, "min": 0, "max": 64,
                    "tooltip": "Crops per concept and image, best-matching boxes first "
                               "(Reference Filter similarity, else score). 0: no limit."}),
                "dedupe_iou": ("FLOAT", {
                    "default": d.dedupe_iou, "min": 0.05, "max": 1.0, "step": 0.01,
                    "tooltip": "Crops of one image overlapping more than this (IoU) become one "
                               "crop (keep wins over modify, else the larger)."}),
            },
            "optional": {
                "names": ("STRING", {"forceInput": True,
                                     "tooltip": "File names of the images (the names output "
                                                "of Load Training Images), kept as "
                                                "provenance."}),
            },
        }

    def crop(self, images, detections, intent, margin, aspect, min_size, small_crops,
             upscale_method, max_upscale, modify_area, max_crops_per_concept_per_image,
             dedupe_iou, names=None):
        settings = CropSettings(
            margin=margin[0], aspect=aspect[0], min_size=min_size[0],
            small_crops=small_crops[0], upscale_method=upscale_method[0],
            max_upscale=max_upscale[0], modify_area=modify_area[0],
            max_crops_per_concept_per_image=max_crops_per_concept_per_image[0],
            dedupe_iou=dedupe_iou[0])
        pils = batches_to_pils(images)
        # plan_crops checks these are the images the detections were made on.
        plan = plan_crops(intent[0], detections[0], [p.size for p in pils], names, settings)
        augmented = Augmented(plan=plan, sources=pils)
        pages = render_pages(augmented)
        text = summary(augmented)
        ui = {"images": get_runtime().save_ui_images(pages[:UI_PREVIEWS], "augment"),
              "text": [text]}
        return {"ui": ui, "result": (augmented, [pils_to_batch([p]) for p in pages], text)}


NODES = [IntentCrop]
