"""Evaluation nodes: Evaluation Prompts makes the prompt and seed lists stock CLIPTextEncode and
KSampler generate from; StabilityScore, ControllabilityScore and DeleteLeakage score the images
that come back, each adding its metric to a chain of scores (one chain per model) for
Evaluation Report.

The score nodes take every input as a list (``INPUT_IS_LIST``): ComfyUI runs the sampler once
per prompt, so the images arrive as one batch per plan item. The plan pairs them with their
prompts (`intenttuner.evaluation.pairing`), never the order alone.
"""

from __future__ import annotations

from functools import partial

from ..intenttuner.detection.detect import DETECTION_PACKAGES
from ..intenttuner.errors import InputError
from ..intenttuner.evaluation.controllability import ControlSettings, controllability_score
from ..intenttuner.evaluation.leakage import LeakageSettings, leakage_score
from ..intenttuner.evaluation.pairing import check_intent, pair_images
from ..intenttuner.evaluation.preview import headline, plan_summary, render_metric
from ..intenttuner.evaluation.prompts import (
    MAX_IMAGES_PER_PROMPT,
    MAX_PROMPTS_PER_TEST,
    SEED_SPACE,
    PlanSettings,
    build_plan,
)
from ..intenttuner.evaluation.stability import StabilitySettings, stability_score
from ..intenttuner.evaluation.types import EvalScores
from ..intenttuner.families.base import Package, require_packages
from ..intenttuner.imageio import batches_to_pils, pils_to_batch
from ..intenttuner.runtime import get_runtime
from . import types
from .schema import ROOT_CATEGORY

CATEGORY = f"{ROOT_CATEGORY}/Evaluation"
NOT_APPLICABLE = -1.0  # the score output of a metric that does not apply (FLOAT must be a number)
DEFAULT_LABEL = "model"


def threshold(default: float, tooltip: str, low: float = 0.0) -> tuple[str, dict]:
    return "FLOAT", {"default": default, "min": low, "max": 1.0, "step": 0.01, "tooltip": tooltip}


class EvaluationPrompts:
    DISPLAY_NAME = "Evaluation Prompts"
    DESCRIPTION = (
        "From an intent, the prompts and seeds that test it: kept concepts in neutral contexts "
        "(stability), each value of a modified concept with the same contexts and seeds "
        "(controllability), and prompts where a deleted concept would come back without being "
        "named (delete leakage). Connect prompts to CLIPTextEncode and seeds to KSampler: they "
        "run once per prompt. The plan goes to the score nodes, which check the pairing.")
    CATEGORY = CATEGORY
    FUNCTION = "make"
    RETURN_TYPES = ("STRING", "INT", types.EVAL_PLAN, "STRING")
    RETURN_NAMES = ("prompts", "seeds", "plan", "summary")
    OUTPUT_IS_LIST = (True, True, False, False)
    OUTPUT_TOOLTIPS = (
        "One prompt per image to generate (a list: CLIPTextEncode runs once per prompt).",
        "The seed of each prompt, in the same order (a list, for KSampler's seed input).",
        "The plan (prompts, seeds, what each tests), for the score nodes.",
        "How many images each test needs, tests left out and why, every prompt with its seed.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        d = PlanSettings()
        return {"required": {
            "intent": (types.INTENT, {"tooltip": "The intent to evaluate (from Intent Parse)."}),
            "prompts_per_test": ("INT", {
                "default": d.prompts_per_test, "min": 1, "max": MAX_PROMPTS_PER_TEST,
                "tooltip": "Contexts per test (and per value of a modified concept). More "
                           "prompts: steadier scores, longer generation."}),
            "images_per_prompt": ("INT", {
                "default": d.images_per_prompt, "min": 1, "max": MAX_IMAGES_PER_PROMPT,
                "tooltip": "Seeds per prompt: the same text under different noise."}),
            # fixed, not randomised after each queue: the same plan must give comparable runs
            "seed": ("INT", {
                "default": d.seed, "min": 0, "max": SEED_SPACE - 1,
                "control_after_generate": False,
                "tooltip": "Base seed of the plan. Keep it when comparing models, so each "
                           "model draws from the same noise."}),
        }}

    def make(self, intent, prompts_per_test, images_per_prompt, seed):
        plan = build_plan(intent, PlanSettings(prompts_per_test=prompts_per_test,
                                               images_per_prompt=images_per_prompt, seed=seed))
        text = plan_summary(plan)
        return {"ui": {"text": [text]},
                "result": (plan.prompts(), plan.seeds(), plan, text)}


def _chain(scores: list | None, label: list | None) -> EvalScores:
    """The scores to add this metric to: the connected chain, or a new one named ``label``."""
    name = (label[0] if label else "").strip()
    if not scores:
        return EvalScores(label=name or DEFAULT_LABEL)
    chain = scores[0]
    if name and name != chain.label:
        raise InputError(f"The connected scores are labelled '{chain.label}', but this node's "
                         f"label is '{name}': a chain holds one model's scores. Clear the label "
                         "here (it is set on the first score node), or start a new chain.")
    return chain


def pairing_line(plan, generated: list, result) -> str:
    """What the node was given, so a wrong wiring shows on the node, not only in the score."""
    scored = len({record.image for record in result.records})
    return (f"{len(generated)} image(s) paired with the plan's {len(plan.items)} prompt(s); "
            f"{scored} scored for {result.metric.value}")


class _ScoreNode:
    """What the three score nodes share: list inputs, the pairing, the chain and the outputs."""

    CATEGORY = CATEGORY
    OUTPUT_NODE = True
    INPUT_IS_LIST = True
    RETURN_TYPES = (types.EVAL_SCORES, "FLOAT", "STRING", "IMAGE")
    RETURN_NAMES = ("scores", "score", "breakdown", "preview")
    SCORE_TOOLTIP = "The score in [0, 1], higher is better; -1 when not applicable (see breakdown)."

    @classmethod
    def output_tooltips(cls, score: str) -> tuple[str, ...]:
        return ("The chained scores with this metric added: connect to the next score node of "
                "the same model, or to Evaluation Report.",
                score,
                "The result as JSON: score, formula and parts, per-concept breakdown, models, "
                "warnings (the per-image records travel in scores).",
                "The scored images with the box used and what the metric saw in each.")

    @staticmethod
    def common_inputs() -> tuple[dict, dict]:
        """(required, optional) inputs of every score node."""
        required = {
            "images": ("IMAGE", {"tooltip": "The images generated from the plan's prompts (the "
                                            "VAE Decode after KSampler: one batch per prompt)."}),
            "plan": (types.EVAL_PLAN, {"tooltip": "From Evaluation Prompts: which prompt and "
                                                  "test each image belongs to."}),
            "intent": (types.INTENT, {"tooltip": "The intent the plan was made from."}),
            "label": ("STRING", {"default": "", "tooltip": "The model's name in the report "
                                                           "(e.g. 'intent LoRA, step 1000'). "
                                                           "Empty: the chained scores' label, "
                                                           f"or '{DEFAULT_LABEL}'."}),
            # Required, so pairing never rests on the image order alone: the prompts that made
            # the images are checked against the plan's, item by item.
            "prompts": ("STRING", {"forceInput": True,
                                   "tooltip": "The prompts list wired to CLIPTextEncode: checked "
                                              "against the plan, so images of other prompts are "
                                              "refused."}),
        }
        optional = {
            "scores": (types.EVAL_SCORES, {"tooltip": "Scores of the same model from another "
                                                      "score node: this metric is added to "
                                                      "them."}),
        }
        return required, optional

    def score_images(self, images, plan, intent, label, prompts, scores, metric) -> dict:
        """Pair, score with ``metric(generated, intent) -> MetricResult``, chain, preview."""
        plan, intent = plan[0], intent[0]
        check_intent(plan, intent)
        chain = _chain(scores, label)
        generated = pair_images(plan, images, prompts)
        result = metric(generated, intent)
        preview = render_metric(generated, result)
        value = result.score if result.applicable and result.score is not None else NOT_APPLICABLE
        breakdown = result.model_dump_json(indent=2, exclude={"records"})
        ui = {"images": get_runtime().save_ui_images([preview], "evaluation"),
              "text": [f"{headline(result)}\n{pairing_line(plan, generated, result)}"]}
        return {"ui": ui, "result": (chain.with_result(result), value, breakdown,
                                     pils_to_batch([preview]))}


class StabilityScore(_ScoreNode):
    DISPLAY_NAME = "Stability Score"
    DESCRIPTION = (
        "Does the model keep what the intent keeps? Each kept concept is detected in every "
        "stability image, cropped, embedded with the identity encoder (DINO ViT-S/16, the "
        "DreamBooth subject-fidelity standard; a CLIP image encoder also works) and compared "
        "with its reference crops (best match). An image where it is not found counts as 0, so "
        "score = detection rate x similarity, optionally mixed with a human-preference "
        "(aesthetic) quality term.")
    FUNCTION = "score"
    OUTPUT_TOOLTIPS = _ScoreNode.output_tooltips(_ScoreNode.SCORE_TOOLTIP)

    @classmethod
    def requires(cls) -> tuple[Package, ...]:
        return DETECTION_PACKAGES

    @classmethod
    def INPUT_TYPES(cls):
        d = StabilitySettings()
        required, optional = cls.common_inputs()
        return {
            "required": {
                **required,
                "detector": (types.DETECTOR, {"tooltip": "From Load Concept Detector: finds the "
                                                         "kept concepts again."}),
                "identity_encoder": (f"{types.IDENTITY_ENCODER},{types.IMAGE_ENCODER}", {
                    "tooltip": "From Load Identity Encoder (DINO, the standard for subject "
                               "fidelity) or Load Image Encoder (CLIP image features)."}),
                "quality_weight": threshold(d.quality_weight, "Share of the quality term in the "
                                            "score: (1 - w) x identity + w x quality. Ignored "
                                            "without a quality scorer."),
                "box_threshold": threshold(d.box_threshold, "Detector confidence a box needs to "
                                           "count as found. Lower finds more (and more wrong) "
                                           "boxes."),
            },
            "optional": {
                "quality_scorer": (types.QUALITY_SCORER, {
                    "tooltip": "From Load Quality Scorer: adds the human-preference term."}),
                "reference_images": ("IMAGE", {
                    "tooltip": "The training images: the kept concepts found there join the "
                               "reference crops (needed for concepts without a box in the "
                               "intent)."}),
                **optional,
            },
        }

    def score(self, images, plan, intent, label, detector, identity_encoder, quality_weight,
              box_threshold, quality_scorer=None, reference_images=None, prompts=None,
              scores=None):
        require_packages(self.requires(), self.DISPLAY_NAME)
        settings = StabilitySettings(box_threshold=box_threshold[0],
                                     quality_weight=quality_weight[0])
        references = batches_to_pils(reference_images) if reference_images else None
        metric = partial(stability_score, detector=detector[0],
                         identity_encoder=identity_encoder[0],
                         quality_scorer=quality_scorer[0] if quality_scorer else None,
                         reference_images=references, settings=settings)
        return self.score_images(images, plan, intent, label, prompts, scores, metric)


class ControllabilityScore(_ScoreNode):
    DISPLAY_NAME = "Controllability Score"
    DESCRIPTION = (
        "Does text control what the intent modifies? Each controllability image (the concept's "
        "crop when a detector finds it, else the whole image) is classified by CLIP between the "
        "value it was prompted with and each other value of the concept, as a two-way choice. "
        "Accuracy and mean margin per direction; the score is the balanced accuracy (0.5 is "
        "chance).")
    FUNCTION = "score"
    OUTPUT_TOOLTIPS = _ScoreNode.output_tooltips(_ScoreNode.SCORE_TOOLTIP)

    @classmethod
    def INPUT_TYPES(cls):
        d = ControlSettings()
        required, optional = cls.common_inputs()
        return {
            "required": {
                **required,
                "clip": (types.IMAGE_ENCODER, {"tooltip": "From Load Image Encoder: a CLIP "
                                                          "image/text model (DINO has no "
                                                          "text side)."}),
                "box_threshold": threshold(d.box_threshold, "Detector confidence a box needs "
                                           "for its crop to be classified instead of the whole "
                                           "image."),
            },
            "optional": {
                "detector": (types.DETECTOR, {"tooltip": "Optional, from Load Concept Detector: "
                                                         "classify the concept's crop (hair, "
                                                         "jacket) rather than the whole "
                                                         "image."}),
                **optional,
            },
        }

    def score(self, images, plan, intent, label, clip, box_threshold, detector=None,
              prompts=None, scores=None):
        if detector:
            require_packages(DETECTION_PACKAGES, self.DISPLAY_NAME)
        settings = ControlSettings(box_threshold=box_threshold[0])
        metric = partial(controllability_score, clip_encoder=clip[0],
                         detector=detector[0] if detector else None, settings=settings)
        return self.score_images(images, plan, intent, label, prompts, scores, metric)


class DeleteLeakage(_ScoreNode):
    DISPLAY_NAME = "Delete Leakage"
    DESCRIPTION = (
        "Does the model draw what the intent deletes? The share of leakage images in which the "
        "detector finds a deleted concept (lower is better); with an image encoder, only "
        "detections that look like the concept's reference crops count (Reference Filter), "
        "so 'never his necklace' is not failed by any necklace.")
    FUNCTION = "score"
    OUTPUT_TOOLTIPS = _ScoreNode.output_tooltips(
        "The leaked share in [0, 1], LOWER is better; -1 when not applicable (see breakdown).")

    @classmethod
    def requires(cls) -> tuple[Package, ...]:
        return DETECTION_PACKAGES

    @classmethod
    def INPUT_TYPES(cls):
        d = LeakageSettings()
        required, optional = cls.common_inputs()
        return {
            "required": {
                **required,
                "detector": (types.DETECTOR, {"tooltip": "From Load Concept Detector: looks for "
                                                         "the deleted concepts."}),
                "box_threshold": threshold(d.box_threshold, "Detector confidence a box needs to "
                                           "count as a leak."),
                "reference_threshold": threshold(
                    d.reference_threshold, "With an image encoder: cosine similarity to a "
                    "reference crop a detection needs to count (Reference Filter's threshold).",
                    low=-1.0),
            },
            "optional": {
                "image_encoder": (types.IMAGE_ENCODER, {
                    "tooltip": "Optional, from Load Image Encoder: count only detections that "
                               "look like the concept's reference crops."}),
                **optional,
            },
        }

    def score(self, images, plan, intent, label, detector, box_threshold, reference_threshold,
              image_encoder=None, prompts=None, scores=None):
        require_packages(self.requires(), self.DISPLAY_NAME)
        settings = LeakageSettings(box_threshold=box_threshold[0],
                                   reference_threshold=reference_threshold[0])
        metric = partial(leakage_score, detector=detector[0],
                         image_encoder=image_encoder[0] if image_encoder else None,
                         settings=settings)
        return self.score_images(images, plan, intent, label, prompts, scores, metric)


NODES = [EvaluationPrompts, StabilityScore, ControllabilityScore, DeleteLeakage]
