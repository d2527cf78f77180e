"""IntentInpaint: paints the intent's delete concepts out of IntentCrop's source images.

A thin adapter over ``intenttuner.augment.removal``: widgets map onto `MaskSettings` and
`InpaintSettings` one to one; the before/after previews and the summary are shown on the node
and returned as outputs.
"""

from __future__ import annotations

from ..intenttuner.augment.inpaint import AUTO, BACKENDS
from ..intenttuner.augment.inpaint_base import CLASSICAL_METHODS, InpaintSettings
from ..intenttuner.augment.inpaint_diffusion import NEUTRAL_PROMPT
from ..intenttuner.augment.inpaint_preview import previews, summary
from ..intenttuner.augment.masks import MaskSettings
from ..intenttuner.augment.removal import remove_deleted
from ..intenttuner.imageio import pils_to_batch
from ..intenttuner.runtime import get_runtime
from . import types
from .schema import ROOT_CATEGORY, combo

CATEGORY = f"{ROOT_CATEGORY}/Augment"
UI_PREVIEWS = 32  # previews shown on the node itself; the output list has them all


class IntentInpaint:
    DISPLAY_NAME = "Intent Inpaint"
    DESCRIPTION = ("Removes every delete concept of the intent (\"never give him a necklace\") "
                   "from the training images: a mask per image from SAM (or the box), dilated, "
                   "then filled by OpenCV, LaMa or your base model. Pixels outside the mask stay "
                   "exactly as they were; crops planned by IntentCrop are cut from the cleaned "
                   "images. The preview shows each image before and after with the mask "
                   "outlined; the summary lists what was removed, mask sizes and warnings.")
    CATEGORY = CATEGORY
    FUNCTION = "inpaint"
    OUTPUT_NODE = True
    RETURN_TYPES = (types.AUGMENTED, "IMAGE", "STRING")
    RETURN_NAMES = ("augmented", "preview", "summary")
    OUTPUT_IS_LIST = (False, True, False)
    OUTPUT_TOOLTIPS = (
        "The same plan with cleaned source images, their masks and the inpaint settings; each "
        "item lists the delete concepts painted out of it.",
        "Per source image: before | after, the inpainted region outlined (a list).",
        "Per image: concepts removed, mask coverage, overlaps; then warnings.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        masks, fill = MaskSettings(), InpaintSettings()
        return {
            "required": {
                "augmented": (types.AUGMENTED, {"tooltip": "The plan and source images from "
                                                           "IntentCrop."}),
                "detections": (types.DETECTIONS, {
                    "tooltip": "Detections of the same images (Concept Detect / Reference "
                               "Filter); with SAM masks the removal follows the object's "
                               "outline, without them its box."}),
                "intent": (types.INTENT, {"tooltip": "The intent: its delete concepts are "
                                                     "removed."}),
                "backend": combo([AUTO, *BACKENDS], AUTO, (
                    "auto: LaMa if a LaMa model is connected, else classical. classical: "
                    "OpenCV, no weights, instant, blurry on large holes. lama: learned removal, "
                    "clean fills (needs 'inpainter'). diffusion: your base model repaints the "
                    "hole, slowest (needs 'base_model').")),
                "dilate_px": ("INT", {
                    "default": masks.dilate_px, "min": 0, "max": 256, "step": 1,
                    "tooltip": "Grow each mask by this many pixels, plus "
                               f"{masks.dilate_frac:.0%} of its box's longer side, so the "
                               "object's edge and shadow go too."}),
                "classical_method": combo(list(CLASSICAL_METHODS), fill.method,
                                          "classical backend: telea (fast marching) or "
                                          "navier-stokes (continues edges into the hole)."),
                "steps": ("INT", {"default": fill.steps, "min": 1, "max": 150,
                                  "tooltip": "diffusion backend: denoising steps."}),
                "seed": ("INT", {"default": fill.seed, "min": 0, "max": 2**31 - 1,
                                 "tooltip": "diffusion backend: training image i (from 0) uses "
                                            "seed + i."}),
                "prompt": ("STRING", {
                    "default": "", "multiline": False,
                    "tooltip": "diffusion backend: what to paint instead. Empty: "
                               f"'{NEUTRAL_PROMPT}'. The removed concepts are always in the "
                               "negative prompt."}),
            },
            "optional": {
                "inpainter": (types.INPAINTER, {"tooltip": "From Load Inpaint Model (LaMa): "
                                                           "for the lama backend (and auto)."}),
                "base_model": (types.BASE_MODEL, {"tooltip": "From Load Base Model: for the "
                                                             "diffusion backend."}),
            },
        }

    def inpaint(self, augmented, detections, intent, backend, dilate_px, classical_method,
                steps, seed, prompt, inpainter=None, base_model=None):
        removal = remove_deleted(
            augmented, detections, intent, backend,
            mask_settings=MaskSettings(dilate_px=dilate_px),
            settings=InpaintSettings(method=classical_method, steps=steps, seed=seed,
                                     prompt=prompt),
            inpainter=inpainter, base_model=base_model)
        images = previews(removal)
        text = summary(removal)
        ui = {"images": get_runtime().save_ui_images(images[:UI_PREVIEWS], "inpaint"),
              "text": [text]}
        return {"ui": ui, "result": (removal.augmented, [pils_to_batch([p]) for p in images],
                                     text)}


NODES = [IntentInpaint]
