"""Training Monitor: the intent, the scoring models and the monitor's settings in one IT_MONITOR
object, for LoRA Train's ``monitor`` input. LoRA Train then samples the intent's evaluation
prompts every N steps with the in-training LoRA, scores them (stability, controllability, delete
leakage, as the Evaluation nodes do) and keeps the best checkpoint.

The widgets are the fields of `intenttuner.monitor.settings.MonitorSettings`, with its names and
defaults; the settings object checks them, so a bad combination is refused here, before
training starts.
"""

from __future__ import annotations

from dataclasses import fields

from ..intenttuner.detection.detect import DETECTION_PACKAGES
from ..intenttuner.evaluation.evaluate import EvalModels
from ..intenttuner.evaluation.prompts import MAX_PROMPTS_PER_TEST, SEED_SPACE
from ..intenttuner.families.base import Package, require_packages
from ..intenttuner.imageio import batch_to_pils
from ..intenttuner.monitor.settings import (
    MAX_SAMPLE_SIZE,
    MAX_SAMPLE_STEPS,
    MonitorSettings,
    MonitorSpec,
)
from . import types
from .training import BIG
from .training import CATEGORY as TRAINING_CATEGORY

DEFAULTS = MonitorSettings()
WEIGHT = {"min": 0.0, "max": 100.0, "step": 0.1}
SHARE = {"min": 0.0, "max": 1.0, "step": 0.01}
FLOATS = {f.name for f in fields(MonitorSettings) if isinstance(getattr(DEFAULTS, f.name), float)}

# (widget options, tooltip) per MonitorSettings field, in the dataclass's order.
SETTINGS: dict[str, tuple[dict, str]] = {
    "sample_every_steps": ({"min": 0, "max": BIG, "step": 1},
                           "Steps between sample points: at each, a checkpoint is saved, the "
                           "evaluation prompts are generated with it and scored. 0: only at the "
                           "end. Each point costs about (images x sample_steps) denoising "
                           "steps."),
    "prompts_per_test": ({"min": 1, "max": MAX_PROMPTS_PER_TEST, "step": 1},
                         "Evaluation contexts per test (and per value of a modified concept), "
                         "one seed each. More: steadier scores, slower points."),
    "sample_steps": ({"min": 1, "max": MAX_SAMPLE_STEPS, "step": 1},
                     "Denoising steps per sample image (the model's own diffusers scheduler)."),
    "guidance_scale": ({"min": 0.0, "max": 100.0, "step": 0.1},
                       "Classifier-free guidance of the samples (KSampler's cfg)."),
    "sample_size": ({"min": 0, "max": MAX_SAMPLE_SIZE, "step": 8},
                    "Side of the square samples in px, a multiple of 8; 0: the run's training "
                    "resolution."),
    "batch_size": ({"min": 1, "max": 64, "step": 1},
                   "Sample images per pipeline call. Lower it if memory runs out while "
                   "sampling."),
    "seed": ({"min": 0, "max": SEED_SPACE - 1, "step": 1, "control_after_generate": False},
             "Base seed of the evaluation plan: every point uses the same prompts and seeds, so "
             "the points differ only by training."),
    "stability_weight": (WEIGHT, "Weight of stability (kept concepts stay the same) in the "
                                 "score that picks the best checkpoint; 0 leaves it out."),
    "controllability_weight": (WEIGHT, "Weight of controllability (text changes what the intent "
                                       "modifies) in the best checkpoint's score; 0 leaves it "
                                       "out."),
    "leakage_weight": (WEIGHT, "Weight of delete leakage (counted as 1 - leakage: deleted "
                               "concepts must not come back) in the best checkpoint's score; 0 "
                               "leaves it out."),
    "box_threshold": (SHARE, "Detector confidence a box needs to count as found, for every "
                             "metric. Lower finds more (and more wrong) boxes."),
    "quality_weight": (SHARE, "Share of the quality term in stability: (1 - w) x identity + w x "
                              "quality. Ignored without a quality scorer."),
}


def setting_input(name: str) -> tuple[str, dict]:
    options, tooltip = SETTINGS[name]
    default = getattr(DEFAULTS, name)
    kind = "FLOAT" if name in FLOATS else "INT"
    return kind, {"default": default, **options, "tooltip": tooltip}


class TrainingMonitor:
    DISPLAY_NAME = "Training Monitor"
    DESCRIPTION = (
        "Watches a LoRA while it trains, by the intent: connect it to LoRA Train's monitor "
        "input. Every sample_every_steps steps LoRA Train saves a checkpoint, generates the "
        "intent's evaluation prompts with it (same prompts and seeds at every point) and scores "
        "them with these models: stability, controllability, delete leakage. The panel on LoRA "
        "Train shows loss, scores and samples live, lets you mark samples good or bad and stop "
        "early; the best-scoring checkpoint is kept as <run>_best.safetensors.")
    CATEGORY = TRAINING_CATEGORY
    FUNCTION = "make"
    RETURN_TYPES = (types.MONITOR,)
    RETURN_NAMES = ("monitor",)
    OUTPUT_TOOLTIPS = (
        "The intent, the scoring models and these settings, for LoRA Train's monitor input: "
        "it samples and scores the run every sample_every_steps steps and keeps the best "
        "checkpoint.",)

    @classmethod
    def requires(cls) -> tuple[Package, ...]:
        return DETECTION_PACKAGES  # the detector's batched_nms, as the score nodes need

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "intent": (types.INTENT, {
                    "tooltip": "The intent the LoRA is trained for (Intent Parse / Intent "
                               "Load): what the samples test."}),
                "detector": (types.DETECTOR, {
                    "tooltip": "From Load Concept Detector: finds the concepts in the "
                               "samples."}),
                "identity_encoder": (f"{types.IDENTITY_ENCODER},{types.IMAGE_ENCODER}", {
                    "tooltip": "From Load Identity Encoder (DINO, the standard for subject "
                               "fidelity) or Load Image Encoder: compares kept concepts with "
                               "their references."}),
                "clip": (types.IMAGE_ENCODER, {
                    "tooltip": "From Load Image Encoder: a CLIP image/text model, for "
                               "controllability and the reference filter of delete "
                               "leakage."}),
                **{f.name: setting_input(f.name) for f in fields(MonitorSettings)},
            },
            "optional": {
                "quality_scorer": (types.QUALITY_SCORER, {
                    "tooltip": "From Load Quality Scorer: adds the human-preference term to "
                               "stability (quality_weight)."}),
                "reference_images": ("IMAGE", {
                    "tooltip": "Images the kept concepts' reference crops come from. Not "
                               "connected: the training set's original images."}),
            },
        }

    def make(self, intent, detector, identity_encoder, clip, quality_scorer=None,
             reference_images=None, **settings):
        require_packages(self.requires(), self.DISPLAY_NAME)
        # The frontend's JSON writes 1.0 as 1: a FLOAT widget may arrive as an int.
        values = {name: float(v) if name in FLOATS and type(v) is int else v
                  for name, v in settings.items()}
        spec = MonitorSpec(
            intent=intent,
            models=EvalModels(detector=detector, identity_encoder=identity_encoder, clip=clip,
                              quality=quality_scorer),
            settings=MonitorSettings(**values),
            reference_images=batch_to_pils(reference_images)
            if reference_images is not None else None)
        return (spec,)


NODES = [TrainingMonitor]
