"""Reward Fine-Tune: a trained LoRA goes on training on the images people marked (or a reward
model scored), weighted by their reward, with its original training set as the regulariser
(Lee et al. 2023, stage 3), through LoRA Train's own trainer: checkpoints, Cancel, resume, the
monitor's panel and Stop. The new LoRA sits beside the old one (``<old>-reward``), and a
before/after comparison on fixed prompts and seeds shows what changed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..intenttuner.errors import InputError
from ..intenttuner.families.base import Package
from ..intenttuner.imageio import pils_to_batch
from ..intenttuner.monitor.settings import MAX_SAMPLE_STEPS, MonitorSettings
from ..intenttuner.runtime import get_runtime
from ..intenttuner.training.report import run_summary
from ..intenttuner.weights.locate import list_models, resolve_model
from . import comfy_bridge, types
from .schema import ROOT_CATEGORY
from .training import LR, LoRATrain
from .training import lora_name as listed_name

CATEGORY = f"{ROOT_CATEGORY}/Feedback"
NONE = "none"
WEIGHTINGS = ["marks", "reward", "both"]  # intenttuner.reward.weighted_set.WEIGHTINGS


class RewardFineTune:
    DISPLAY_NAME = "Reward Fine-Tune LoRA"
    DESCRIPTION = (
        "Continues a trained LoRA on generated images weighted by how good they are: by your "
        "marks (good 1, bad 0: Rate Images or the training monitor), by a reward model's "
        "prediction, or both, plus the LoRA's original training set at weight beta so it "
        "keeps what it learned (reward-weighted likelihood, Lee et al. 2023). Same trainer, "
        "checkpoints, Cancel and resume as LoRA Train; the new LoRA is <old>-reward beside the "
        "old one, and the comparison shows both LoRAs on the same prompts and seeds with their "
        "reward (and, with a Training Monitor, their intent scores).")
    CATEGORY = CATEGORY
    FUNCTION = "finetune"
    OUTPUT_NODE = True
    RETURN_TYPES = (types.LORA, "STRING", "STRING", "IMAGE")
    RETURN_NAMES = ("lora", "lora_name", "report", "comparison")
    OUTPUT_TOOLTIPS = (
        "The fine-tuned run (its LoRA file and folder), for Apply Trained LoRA.",
        "The new LoRA's name in models/loras, as LoraLoader lists it.",
        "The weighted set (images used and left out), the training run, and before/after "
        "reward and intent scores.",
        "Old LoRA | new LoRA on the same prompts and seeds, the reward under each image.",
    )

    @classmethod
    def requires(cls) -> tuple[Package, ...]:
        return LoRATrain.requires()

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "training_set": (types.TRAINING_SET, {
                    "tooltip": "The set the LoRA was trained on: the regulariser that keeps "
                               "what it learned (weight beta)."}),
                "base_model": (types.BASE_MODEL, {
                    "tooltip": "The base model the LoRA was trained on (another one is "
                               "refused)."}),
                "feedback": (types.FEEDBACK, {
                    "tooltip": "From Rate Images or Load Feedback: the generated images with "
                               "their prompts and marks."}),
                "weighting": (WEIGHTINGS, {
                    "default": "marks",
                    "tooltip": "marks: marked images only, good 1 and bad 0. reward: every "
                               "image weighted by the reward model's P(good). both: marks "
                               "where marked, the reward model elsewhere."}),
                "beta": ("FLOAT", {
                    "default": 1.0, "min": 0.0, "max": 100.0, "step": 0.1,
                    "tooltip": "Weight of the original training set (the paper's beta). 0: "
                               "the LoRA learns only the marked images and may forget its "
                               "subject; 1 balances both."}),
                "max_train_steps": ("INT", {
                    "default": 200, "min": 1, "max": 1_000_000,
                    "tooltip": "Optimizer steps of the fine-tune."}),
                "learning_rate": ("FLOAT", {
                    "default": 5e-5, "min": 1e-7, "max": 1.0, **LR,
                    "tooltip": "Below LoRA Train's usual 1e-4: this corrects a LoRA, it does "
                               "not learn a new subject."}),
                "seed": ("INT", {
                    "default": 0, "min": 0, "max": 2**63 - 1, "control_after_generate": False,
                    "tooltip": "Seed of the fine-tune's noise and order, and of the "
                               "comparison's samples."}),
                "save_every_steps": ("INT", {
                    "default": 0, "min": 0, "max": 1_000_000,
                    "tooltip": "A resumable checkpoint every N steps in "
                               "models/loras/<run>/; 0: the final file only."}),
                "compare_steps": ("INT", {
                    "default": MonitorSettings().sample_steps, "min": 1,
                    "max": MAX_SAMPLE_STEPS,
                    "tooltip": "Denoising steps of the before/after comparison's samples "
                               "(with a monitor connected, its own settings). Fewer: a "
                               "quicker, rougher comparison."}),
            },
            "optional": {
                "lora": (types.LORA, {
                    "tooltip": "From LoRA Train: the LoRA to fine-tune (or choose lora_name)."}),
                "lora_name": ([NONE, *list_models("loras")], {
                    "default": NONE,
                    "tooltip": "Instead of lora: a LoRA in models/loras trained on this base "
                               "model."}),
                "reward_model": (types.REWARD_MODEL, {
                    "tooltip": "From Train / Load Reward Model: needed by the reward and both "
                               "weightings; scores the comparison."}),
                "image_encoder": (types.IMAGE_ENCODER, {
                    "tooltip": "The image encoder the reward model was trained with (Load "
                               "Image Encoder)."}),
                "resume_from": ("STRING", {
                    "default": "",
                    "tooltip": "A checkpoint of an earlier Reward Fine-Tune run "
                               "(models/loras/<run>/<run>-stepN.safetensors): continues on "
                               "the same weighted images. Empty: a fresh fine-tune."}),
                "monitor": (types.MONITOR, {
                    "tooltip": "From Training Monitor: samples and scores the run live, Stop "
                               "and keep best, and the comparison's intent scores."}),
                "intent": (types.INTENT, {
                    "tooltip": "The intent written into the new LoRA's metadata; default: "
                               "the monitor's, else the old LoRA's."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def finetune(self, training_set, base_model, feedback, weighting, beta, max_train_steps,
                 learning_rate, seed, save_every_steps, compare_steps=None, lora=None, lora_name=NONE,
                 reward_model=None, image_encoder=None, resume_from="", monitor=None,
                 intent=None, unique_id=None):
        from ..intenttuner.monitor.monitor import TrainingMonitor
        from ..intenttuner.reward.finetune import FinetuneSettings, reward_finetune

        old_path, old_config = old_lora(lora, lora_name)
        if intent is None and monitor is not None:
            intent = monitor.intent
        settings = FinetuneSettings(weighting=weighting, beta=float(beta),
                                    max_train_steps=int(max_train_steps),
                                    learning_rate=float(learning_rate), seed=int(seed),
                                    save_every_steps=int(save_every_steps),
                                    resume_from=(resume_from or "").strip())
        runtime = get_runtime()
        prompt_id, context_node = comfy_bridge.executing_context() or (None, None)
        node = str(unique_id) if unique_id is not None else context_node
        observer = TrainingMonitor(monitor, emit=runtime.send_event, node=node,
                                   prompt_id=prompt_id)
        compare = dataclasses.replace(monitor.settings, seed=int(seed)) \
            if monitor is not None else MonitorSettings(
                seed=int(seed), sample_steps=int(compare_steps or MonitorSettings().sample_steps))
        result = reward_finetune(
            old_path, base_model, training_set, feedback, settings, reward_model=reward_model,
            encoder=image_encoder, old_config=old_config, observer=observer,
            compare_settings=compare, monitor=monitor,
            intent=intent.public_dict() if intent is not None else None)
        name = listed_name(result.train.lora_path)
        text = "\n".join([result.summary(), run_summary(result.train, name),
                          *observer.summary_lines()])
        picture = result.comparison.image()
        ui = {"images": runtime.save_ui_images([picture], "reward_finetune"), "text": [text]}
        return {"ui": ui, "result": (result.train, name, text, pils_to_batch([picture]))}


def old_lora(lora, name: str):
    """(file, its run's config or None) of the LoRA to fine-tune: the connected run, else the
    chosen file; both or neither -> InputError."""
    chosen = name and name != NONE
    if lora is not None and chosen:
        raise InputError("Reward Fine-Tune has both lora and lora_name set: connect LoRA Train's "
                         "lora, or choose a file in lora_name (set it to 'none').")
    if lora is not None:
        from ..intenttuner.training.config import load_config

        config_path = Path(lora.run_dir) / "config.json"
        return Path(lora.lora_path), load_config(config_path) if config_path.is_file() else None
    if not chosen:
        raise InputError("Reward Fine-Tune needs the LoRA to fine-tune: connect LoRA Train's "
                         "lora output, or choose a LoRA in lora_name.")
    return resolve_model("loras", name), None


NODES = [RewardFineTune]
