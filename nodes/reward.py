"""Reward model nodes: Train Reward Model learns from the good/bad marks of feedback sets (Rate
Images, a training run's monitor marks) what the person likes, Load Reward Model loads one
trained before, and Reward Score scores any images for their prompts with it.

The reward model is the human-feedback paper's stage 2 (Lee et al. 2023): CLIP image and text
features into a small MLP predicting the mark, with the auxiliary task of telling the real
prompt from perturbed ones. It is only valid with the image encoder it was trained with; every
node that uses it checks that.
"""

from __future__ import annotations

import json

from ..intenttuner.errors import InputError
from ..intenttuner.families.reward_model import describe_encoder
from ..intenttuner.imageio import batch_to_pils, pils_to_batch
from ..intenttuner.loading import load_model, model_choices
from ..intenttuner.reward.score import render_scores, score_images
from ..intenttuner.reward.train_reward import (
    MIN_EACH,
    MIN_MARKS,
    RewardSettings,
    examples_from,
    train_reward_model,
)
from ..intenttuner.runtime import get_runtime
from . import types
from .schema import ROOT_CATEGORY

CATEGORY = f"{ROOT_CATEGORY}/Feedback"
FAMILY = "reward_model"
NONE_YET = "(no reward model yet: train one with Train Reward Model)"
ENCODER_TOOLTIP = ("From Load Image Encoder: the CLIP whose image and text features the reward "
                   "model reads. A reward model only works with the encoder it was trained with "
                   "(another is refused, naming both).")


class TrainRewardModel:
    DISPLAY_NAME = "Train Reward Model"
    DESCRIPTION = (
        "Learns what you like from your good/bad marks (Rate Images, or the training "
        "monitor's marks of a run): CLIP features of each image and its prompt go into a small "
        "network that predicts your mark, as in 'Aligning Text-to-Image Models using Human "
        "Feedback' (Lee et al. 2023), which also learns to tell each good image's real prompt "
        "from copies with a colour, count or attribute word swapped. Trains in seconds and "
        "reports its accuracy on marks held out of training; saved to models/reward_models "
        f"(never over another file). Needs {MIN_MARKS} marks, {MIN_EACH} of each kind.")
    CATEGORY = CATEGORY
    FUNCTION = "train"
    OUTPUT_NODE = True
    RETURN_TYPES = (types.REWARD_MODEL, "STRING", "IMAGE")
    RETURN_NAMES = ("reward_model", "report", "chart")
    OUTPUT_TOOLTIPS = (
        "The trained reward model: connect it to Reward Score or Reward Fine-Tune.",
        "Marks used, held-out accuracy (against always answering the commoner mark), the "
        "prompt check, warnings and where it was saved.",
        "The training loss per epoch, titled with the accuracies.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        d = RewardSettings()
        return {
            "required": {
                "feedback": (types.FEEDBACK, {"tooltip": (
                    "Marked images with their prompts: Rate Images or Load Feedback. Only good "
                    "and bad marks count; skipped and unmarked images are left out.")}),
                "image_encoder": (types.IMAGE_ENCODER, {"tooltip": ENCODER_TOOLTIP}),
                "name": ("STRING", {"default": "my_reward_model", "tooltip": (
                    "File name in models/reward_models (letters, digits, _ and -; a name in "
                    "use gets _00002 like ComfyUI's saved files). Empty: not saved.")}),
                "epochs": ("INT", {"default": d.epochs, "min": 1, "max": 5000, "tooltip": (
                    "Passes over the marks. The network is small: hundreds take seconds.")}),
                "aux_weight": ("FLOAT", {
                    "default": d.aux_weight, "min": 0.0, "max": 10.0, "step": 0.05,
                    "tooltip": "Weight of the paper's auxiliary task (the real prompt should "
                               "score above perturbed ones for good images). 0: marks only."}),
                "held_out": ("FLOAT", {
                    "default": d.held_out, "min": 0.0, "max": 0.5, "step": 0.05,
                    "tooltip": "Share of the good and of the bad marks kept out of training to "
                               "measure the accuracy on marks the model never saw."}),
                "seed": ("INT", {"default": d.seed, "min": 0, "max": 2**31 - 1,
                                 "control_after_generate": False,
                                 "tooltip": "Seed of the split, the perturbed prompts and the "
                                            "training: the same seed, the same model."}),
                "train_anyway": ("BOOLEAN", {"default": False, "tooltip": (
                    f"Train even with fewer than {MIN_MARKS} marks or {MIN_EACH} of a kind "
                    "(the report warns: such a model is unreliable).")}),
            },
            "optional": {
                "feedback_2": (types.FEEDBACK, {"tooltip": (
                    "A second feedback set whose marks are added (e.g. Rate Images and a run's "
                    "monitor marks).")}),
            },
        }

    def train(self, feedback, image_encoder, name, epochs, aux_weight, held_out, seed,
              train_anyway, feedback_2=None):
        marked = [*feedback.marked(), *(feedback_2.marked() if feedback_2 is not None else [])]
        settings = RewardSettings(epochs=epochs, aux_weight=aux_weight, held_out=held_out,
                                  seed=seed, train_anyway=train_anyway)
        result = train_reward_model(examples_from(marked), image_encoder, settings,
                                    name=name.strip() or None)
        report = result.summary()
        chart = result.chart()
        ui = {"images": get_runtime().save_ui_images([chart], "reward_model"), "text": [report]}
        return {"ui": ui, "result": (result.model, report, pils_to_batch([chart]))}


class LoadRewardModel:
    DISPLAY_NAME = "Load Reward Model"
    DESCRIPTION = ("Loads a reward model trained before by Train Reward Model, from "
                   "models/reward_models. Use it with the image encoder it was trained with "
                   "(the info output names it).")
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (types.REWARD_MODEL, "STRING")
    RETURN_NAMES = ("reward_model", "info")
    OUTPUT_TOOLTIPS = ("The reward model, for Reward Score and Reward Fine-Tune.",
                       "The encoder it needs, its marks and its held-out accuracy.")

    @classmethod
    def INPUT_TYPES(cls):
        choices = model_choices(FAMILY) or [NONE_YET]
        return {"required": {"model": (choices, {"default": choices[0], "tooltip": (
            "A reward model file in models/reward_models (refresh the page after training "
            "one).")})}}

    def load(self, model: str):
        if model == NONE_YET:
            raise InputError("There is no reward model in models/reward_models yet: train one "
                             "with Train Reward Model (or connect its output directly).")
        reward_model = load_model(FAMILY, model)
        return (reward_model, describe_model(reward_model))


def describe_model(reward_model) -> str:
    """What a loaded reward model was trained on and how well it did, from its metadata."""
    meta = reward_model.metadata
    marks = json.loads(meta.get("marks") or "{}")
    held = meta.get("held_out_accuracy")
    accuracy = (f"held-out accuracy {float(held):.1%} on {marks.get('held_out', '?')} marks"
                if held else "no marks held out")
    return (f"Reward model {reward_model.name}: for image encoder "
            f"{describe_encoder(reward_model.encoder)}; trained on {marks.get('good', '?')} good "
            f"and {marks.get('bad', '?')} bad marks ({accuracy}) at "
            f"{meta.get('trained_at', 'an unknown time')}.")


def spread_prompts(prompts: list, counts: list[int]) -> list[str]:
    """One prompt per image: a single text (one line for all images, or one line per image),
    one prompt per image, or one per batch (``counts``: the images of each batch -- a sampler
    run once per prompt sends one batch per prompt)."""
    total = sum(counts)
    texts = [str(p) for p in prompts if p is not None]
    if len(texts) == 1:
        lines = [line.strip() for line in texts[0].splitlines() if line.strip()]
        texts = lines if len(lines) > 1 else [texts[0].strip()]
    if len(texts) == 1:
        return texts * total
    if len(texts) == total:
        return texts
    if len(texts) == len(counts):
        return [t for t, n in zip(texts, counts, strict=True) for _ in range(n)]
    raise InputError(f"Reward Score got {total} image(s) in {len(counts)} batch(es) but "
                     f"{len(texts)} prompts: give one prompt for all images, one per image "
                     "(one per line) or one per batch.")


class RewardScore:
    DISPLAY_NAME = "Reward Score"
    DESCRIPTION = ("Scores images for their prompts with a reward model: the probability, "
                   "0 to 1, that you would mark each image good. Connect the image encoder "
                   "the reward model was trained with.")
    CATEGORY = CATEGORY
    FUNCTION = "score"
    OUTPUT_NODE = True
    INPUT_IS_LIST = True  # prompts may come as a list, images as one batch per prompt
    RETURN_TYPES = ("FLOAT", "STRING", "IMAGE")
    RETURN_NAMES = ("scores", "report", "table")
    OUTPUT_IS_LIST = (True, False, False)
    OUTPUT_TOOLTIPS = (
        "P(good) of each image, in order (a list).",
        "Each image's prompt and score, and the mean.",
        "The same as a table with thumbnails (green above 0.5, red below).",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "The images to score (one batch, or one batch per "
                                            "prompt)."}),
            "prompts": ("STRING", {"multiline": True, "default": "", "tooltip": (
                "The prompt each image was made from: one for all, one per line (one per "
                "image), or a list with one per batch.")}),
            "reward_model": (types.REWARD_MODEL, {"tooltip": (
                "From Train Reward Model or Load Reward Model.")}),
            "image_encoder": (types.IMAGE_ENCODER, {"tooltip": ENCODER_TOOLTIP}),
        }}

    def score(self, images, prompts, reward_model, image_encoder):
        reward_model, encoder = reward_model[0], image_encoder[0]
        pils = [[*batch_to_pils(batch)] for batch in images]
        flat = [image for batch in pils for image in batch]
        per_image = spread_prompts(list(prompts), [len(batch) for batch in pils])
        scores = score_images(reward_model, encoder, flat, per_image).tolist()
        mean = sum(scores) / len(scores) if scores else float("nan")
        lines = [f"{i}. {score:.3f}  {prompt}" for i, (prompt, score) in
                 enumerate(zip(per_image, scores, strict=True))]
        report = "\n".join([f"Reward model {reward_model.name}: mean P(good) {mean:.3f} over "
                            f"{len(scores)} image(s).", *lines])
        table = render_scores(flat, per_image, scores,
                              f"Reward {reward_model.name}: mean P(good) {mean:.3f}")
        ui = {"images": get_runtime().save_ui_images([table], "reward_score"), "text": [report]}
        return {"ui": ui, "result": (scores, report, pils_to_batch([table]))}


NODES = [TrainRewardModel, LoadRewardModel, RewardScore]
