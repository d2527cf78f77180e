"""Detection nodes: ConceptDetect finds the intent's concepts in the training images; RefFilter
keeps the detections that look like the user's reference crops.

Both take image *lists* (``INPUT_IS_LIST``) as well as batches, because training images
differ in size; every list item may itself be a batch. They show their previews on the node
and output them as a list of images (one per training image, each its own size).
"""

from __future__ import annotations

from ..intenttuner.detection.detect import DETECTION_PACKAGES, DetectSettings, detect_concepts
from ..intenttuner.detection.preview import render_image, summary
from ..intenttuner.detection.ref_filter import FilterSettings, filter_by_references
from ..intenttuner.families.base import Package, require_packages
from ..intenttuner.imageio import batches_to_pils, pils_to_batch
from ..intenttuner.runtime import get_runtime
from . import types
from .schema import ROOT_CATEGORY

CATEGORY = f"{ROOT_CATEGORY}/Detection"
UI_PREVIEWS = 32  # previews shown on the node itself; the output list has them all
_OUTPUT_TOOLTIPS = (
    "Where each concept is, per image: boxes (original pixels), scores, masks.",
    "Each image with its labelled boxes (a list, one per image).",
    "Boxes per concept, and warnings (concepts never found...).",
)


def _outputs(pils: list, detections) -> dict:
    previews = [render_image(pil, entry.detections)
                for pil, entry in zip(pils, detections.images, strict=True)]
    text = summary(detections)
    ui = {"images": get_runtime().save_ui_images(previews[:UI_PREVIEWS], "detections"),
          "text": [text]}
    return {"ui": ui, "result": (detections, [pils_to_batch([p]) for p in previews], text)}


class _DetectionNode:
    """What both detection nodes share: list inputs, DETECTIONS + preview list + summary out."""

    CATEGORY = CATEGORY
    OUTPUT_NODE = True
    INPUT_IS_LIST = True
    RETURN_TYPES = (types.DETECTIONS, "IMAGE", "STRING")
    RETURN_NAMES = ("detections", "preview", "summary")
    OUTPUT_IS_LIST = (False, True, False)
    OUTPUT_TOOLTIPS = _OUTPUT_TOOLTIPS


class ConceptDetect(_DetectionNode):
    DISPLAY_NAME = "Concept Detect"
    DESCRIPTION = ("Finds every concept of the intent in the training images with the "
                   "open-vocabulary detector, in one pass per image for all concepts; boxes are "
                   "in original-image pixels. Connect a SAM model to get masks too. Concepts "
                   "never found are reported, never silently skipped.")
    FUNCTION = "detect"

    @classmethod
    def INPUT_TYPES(cls):
        defaults = DetectSettings()
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "Training images: a batch, or a list of images "
                                                "of different sizes."}),
                "intent": (types.INTENT, {"tooltip": "What to look for (from Intent Parse)."}),
                "detector": (types.DETECTOR, {"tooltip": "From Load Concept Detector."}),
                "box_threshold": ("FLOAT", {
                    "default": defaults.box_threshold, "min": 0.0, "max": 1.0, "step": 0.01,
                    "tooltip": "Minimum box confidence. Lower finds more (and more wrong) "
                               "boxes."}),
                "text_threshold": ("FLOAT", {
                    "default": defaults.text_threshold, "min": 0.0, "max": 1.0, "step": 0.01,
                    "tooltip": "Minimum confidence that a box shows its phrase."}),
            },
            "optional": {
                "segmenter": (types.SEGMENTER, {"tooltip": "Optional SAM (Load Segment "
                                                           "Anything): adds a mask to each box, "
                                                           "needed for inpainting."}),
            },
        }

    @classmethod
    def requires(cls) -> tuple[Package, ...]:
        """Optional packages, declared like the loaders' (nodes/__init__.py marks the node
        unavailable, with the pip command, where one is missing): torchvision's batched_nms."""
        return DETECTION_PACKAGES

    def detect(self, images, intent, detector, box_threshold, text_threshold, segmenter=None):
        require_packages(self.requires(), self.DISPLAY_NAME)
        pils = batches_to_pils(images)
        settings = DetectSettings(box_threshold=box_threshold[0],
                                  text_threshold=text_threshold[0])
        detections = detect_concepts(pils, intent[0], detector[0],
                                     segmenter[0] if segmenter else None, settings)
        return _outputs(pils, detections)


class RefFilter(_DetectionNode):
    DISPLAY_NAME = "Reference Filter"
    DESCRIPTION = ("Keeps the detections that look like your reference crops (cosine "
                   "similarity of image-encoder embeddings) and drops the others, e.g. other "
                   "black jackets than the one in box [1]. Concepts without reference boxes pass "
                   "through. The preview shows kept and dropped boxes with their similarity, to "
                   "tune the threshold by eye.")
    FUNCTION = "filter"

    @classmethod
    def INPUT_TYPES(cls):
        defaults = FilterSettings()
        return {"required": {
            "images": ("IMAGE", {"tooltip": "The same training images ConceptDetect saw."}),
            "detections": (types.DETECTIONS, {"tooltip": "From Concept Detect."}),
            "intent": (types.INTENT, {"tooltip": "The intent, with its reference crops."}),
            "image_encoder": (types.IMAGE_ENCODER, {"tooltip": "From Load Image Encoder."}),
            "threshold": ("FLOAT", {
                "default": defaults.threshold, "min": -1.0, "max": 1.0, "step": 0.01,
                "tooltip": "Minimum cosine similarity to the best matching reference crop. "
                           "Raise it if wrong objects pass, lower it if right ones are "
                           "dropped (see the preview)."}),
            "top_k": ("INT", {
                "default": defaults.top_k, "min": 0, "max": 100,
                "tooltip": "Per image and concept, keep only the k most similar detections "
                           "(1: the single best match). 0 keeps all that pass."}),
        }}

    def filter(self, images, detections, intent, image_encoder, threshold, top_k):
        pils = batches_to_pils(images)
        settings = FilterSettings(threshold=threshold[0], top_k=top_k[0])
        filtered = filter_by_references(pils, detections[0], intent[0], image_encoder[0],
                                        settings)
        return _outputs(pils, filtered)


NODES = [ConceptDetect, RefFilter]
