"""Training nodes: LoRA Train (a training set and a base model in, a LoRA file in models/loras
out) and Apply Trained LoRA (that LoRA on ComfyUI's own MODEL/CLIP, as stock LoraLoader does).

The widgets are the settings of `intenttuner.training.config.TrainConfig`, with its names and
defaults; the node builds the config, and the trainer writes it into the run folder, so the same
run can be repeated, resumed or scaled out from the command line
(``python -m intenttuner train models/loras/<run>/config.json``).

Every run is observed by `intenttuner.monitor.monitor.TrainingMonitor`: it sends the run's
events (steps, and with a Training Monitor connected, scored sample points) to the panel on the
node, answers its Stop, and keeps the best-scoring checkpoint.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

from annotated_types import Ge, Gt, Le

from ..intenttuner.families.base import Package
from ..intenttuner.imageio import pils_to_batch
from ..intenttuner.runtime import get_runtime
from ..intenttuner.training.config import MAX_RESOLUTION, RESOLUTION_STEP, TrainConfig, make_config
from ..intenttuner.training.report import loss_chart, run_summary
from . import comfy_bridge, types
from .schema import ROOT_CATEGORY

CATEGORY = f"{ROOT_CATEGORY}/Training"
FIELDS = TrainConfig.model_fields
BIG = 1_000_000  # upper bound of counts the config leaves open (steps, epochs...)


def default(name: str):
    """The config's default of setting ``name`` (the widgets never repeat the numbers)."""
    return FIELDS[name].default


def _bounds(name: str, step: float) -> dict:
    """min/max of a number widget from the config's own constraints (gt: one step above)."""
    limits = {}
    for rule in FIELDS[name].metadata:
        if isinstance(rule, Ge):
            limits["min"] = rule.ge
        elif isinstance(rule, Gt):
            limits["min"] = rule.gt + step
        elif isinstance(rule, Le):
            limits["max"] = rule.le
    return limits


def number(name: str, tooltip: str, step: float = 1, **options) -> tuple[str, dict]:
    kind = "INT" if isinstance(default(name), int) and step == int(step) else "FLOAT"
    spec = {"default": default(name), "step": step, "max": BIG, **_bounds(name, step), **options}
    return kind, {**spec, "tooltip": tooltip}


def choice(name: str, tooltip: str) -> tuple[list[str], dict]:
    options = list(typing.get_args(FIELDS[name].annotation))
    return options, {"default": default(name), "tooltip": tooltip}


def switch(name: str, tooltip: str) -> tuple[str, dict]:
    return "BOOLEAN", {"default": default(name), "tooltip": tooltip}


def lora_name(path: Path) -> str:
    """``path`` as ComfyUI's LoRA list names it: relative to the loras folder it lies in."""
    for folder in get_runtime().model_dirs("loras"):
        try:
            return Path(path).resolve().relative_to(Path(folder).resolve()).as_posix()
        except ValueError:
            continue
    return str(path)  # output_dir outside models/loras: the full path is the only name


LR = {"step": 1e-6, "round": False}  # learning rates are typed, not dragged


class LoRATrain:
    DISPLAY_NAME = "LoRA Train (SD1.5/SDXL)"
    DESCRIPTION = (
        "Trains a LoRA on a training set with diffusers + peft and saves it in models/loras "
        "(kohya keys and metadata, so stock LoraLoader and other tools read it), with "
        "checkpoints, config.json and metrics.jsonl in models/loras/<run>/. ComfyUI's models "
        "are freed first; latents and text embeddings are cached once; progress shows per "
        "step and Cancel keeps the last finished step as a loadable checkpoint. The same run "
        "goes on headless or on several GPUs: python -m intenttuner train "
        "models/loras/<run>/config.json. With a Training Monitor connected it samples and "
        "scores the run by the intent as it trains (live on this node: curves, samples to mark "
        "good or bad, Stop and keep best) and saves the best checkpoint as "
        "<run>_best.safetensors.")
    CATEGORY = CATEGORY
    FUNCTION = "train"
    OUTPUT_NODE = True
    # Outputs after the first four were added later: saved workflows link by slot index.
    RETURN_TYPES = (types.LORA, "STRING", "IMAGE", "STRING", types.LORA, "STRING", "IMAGE",
                    "IMAGE")
    RETURN_NAMES = ("lora", "lora_name", "loss_curve", "report", "best_lora", "best_lora_name",
                    "curves", "samples")
    OUTPUT_TOOLTIPS = (
        "The finished run (its LoRA file and folder), for Apply Trained LoRA.",
        "The LoRA's name in models/loras, as LoraLoader lists it.",
        "The loss of every step with its moving average.",
        "Where the files are, how the loss went, warnings, the monitor's overhead and best "
        "checkpoint, and the command to go on headless.",
        "The run with the monitor's best checkpoint as its LoRA (<run>_best.safetensors), for "
        "Apply Trained LoRA. Without a monitor or scores: the final LoRA.",
        "The best checkpoint's name in models/loras, as LoraLoader lists it (without a monitor "
        "or scores: the final LoRA's).",
        "Loss and learning rate per step and, with a monitor, every metric and concept score "
        "at each sample point, the best step marked.",
        "The samples of the last sample point with their prompts (without a monitor: an image "
        "saying so).",
    )

    @classmethod
    def requires(cls) -> tuple[Package, ...]:
        return (Package("diffusers", "diffusers"), Package("transformers", "transformers"),
                Package("peft", "peft"))

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "training_set": (types.TRAINING_SET, {
                    "tooltip": "From Load Training Set or Caption Refine: images with captions "
                               "in kohya layout."}),
                "base_model": (types.BASE_MODEL, {
                    "tooltip": "From Load Base Model for Training (SD 1.5 or SDXL); the LoRA "
                               "works on this model and its fine-tunes."}),
                "run_name": ("STRING", {
                    "default": default("run_name"),
                    "tooltip": "The LoRA becomes models/loras/<run_name>.safetensors. Empty: the "
                               "training set's name. An existing run is never replaced: "
                               "'<run_name>-2', '-3'... is used instead."}),
                "rank": number("rank", "LoRA rank (kohya network_dim): capacity and file size. "
                                       "8-32 for a person or object; higher for styles."),
                "alpha": number("alpha", "LoRA alpha; the update is scaled by alpha / rank, so "
                                         "alpha = rank / 2 halves it.", step=0.1),
                "learning_rate": number("learning_rate", "AdamW learning rate of the UNet LoRA "
                                                         "(1e-4 is the common choice).", **LR),
                "lr_scheduler": choice("lr_scheduler", "How the learning rate changes after the "
                                                       "warm-up: constant, cosine or linear "
                                                       "decay to 0."),
                "lr_warmup_steps": number("lr_warmup_steps", "Steps over which the learning rate "
                                                             "rises from 0 (fewer than the steps)."),
                "max_train_steps": number("max_train_steps", "Optimizer steps in all (unless "
                                                             "epochs is set)."),
                "batch_size": number("batch_size", "Images per step (per GPU). Lower it if "
                                                   "memory runs out."),
                "resolution": number("resolution", "Training side in px, a multiple of 64. 0: the "
                                                   "model's own (512 for SD 1.5, 1024 for SDXL). "
                                                   "With buckets it is the area, not the shape.",
                                     step=RESOLUTION_STEP, max=MAX_RESOLUTION),
                "mixed_precision": choice("mixed_precision", "auto: bf16 on GPUs that have it, "
                                                             "else fp16 on CUDA, fp32 on the CPU; "
                                                             "no: fp32 everywhere."),
                # No "randomize after queue" control (the frontend adds one to every "seed"):
                # a new seed on each queue would retrain every time.
                "seed": number("seed", "Seed of noise, timesteps and shuffling: the same seed and "
                                       "settings give the same LoRA.",
                               control_after_generate=False),
                "save_every_steps": number("save_every_steps", "Save a checkpoint (LoRA + training "
                                                               "state, resumable) every N steps "
                                                               "into models/loras/<run>/; 0: the "
                                                               "final file only."),
            },
            "optional": {
                "epochs": number("epochs", "If > 0: train this many passes over the set (each "
                                           "image times its repeats) instead of max_train_steps."),
                "gradient_accumulation_steps": number(
                    "gradient_accumulation_steps", "Sum the gradients of N batches per optimizer "
                                                   "step: a larger effective batch in the same "
                                                   "memory."),
                "conv_rank": number("conv_rank", "Rank of a LoRA on the 3x3 convolutions too "
                                                 "(LoCon); 0: attention and projections only."),
                "conv_alpha": number("conv_alpha", "Alpha of the convolution LoRA.", step=0.1),
                "train_text_encoder": switch("train_text_encoder", "Also train LoRA on the text "
                                                                   "encoder(s); slower (their "
                                                                   "outputs cannot be cached)."),
                "text_encoder_lr": number("text_encoder_lr", "Learning rate of the text encoder "
                                                             "LoRA; 0: half the learning_rate.",
                                          default=0.0, **{**LR, "min": 0.0}),
                "min_snr_gamma": number("min_snr_gamma", "Min-SNR loss weighting (steadier, "
                                                         "faster training); 0: off.", step=0.5),
                "noise_offset": number("noise_offset", "Noise offset (0.05-0.1 helps very dark "
                                                       "and bright images); 0: off.", step=0.01),
                "caption_dropout": number("caption_dropout", "Share of steps trained on the empty "
                                                             "caption (helps prompts without the "
                                                             "trigger).", step=0.01),
                "flip": switch("flip", "Random horizontal flips (both versions cached). Off for "
                                       "subjects that are not symmetric (text, a parting)."),
                "buckets": switch("buckets", "Aspect-ratio buckets: each image keeps its shape. "
                                             "Off: centre crops to a square."),
                "upscale_small_images": switch("upscale_small_images", "Upscale images smaller "
                                                                       "than their bucket; off: "
                                                                       "such images are refused "
                                                                       "by name."),
                "gradient_checkpointing": switch("gradient_checkpointing", "Recompute activations "
                                                                           "in backward: much "
                                                                           "less memory, ~20-30 "
                                                                           "% slower."),
                "optimizer": choice("optimizer", "auto: 8-bit AdamW when bitsandbytes and CUDA "
                                                 "are there, else AdamW (fused on CUDA)."),
                "keep_checkpoints": number("keep_checkpoints", "Keep only the newest N checkpoints "
                                                               "(needs save_every_steps); 0: all."),
                "resume_from": ("STRING", {
                    "default": default("resume_from"),
                    "tooltip": "A checkpoint to continue from: models/loras/<run>/<run>-stepN"
                               ".safetensors (its .train-state beside it holds the optimizer "
                               "and RNG state). Empty: a fresh run."}),
                "intent": (types.INTENT, {
                    "tooltip": "The intent written into the LoRA's metadata (without reference "
                               "crops); default: the monitor's, else the training set's own."}),
                "monitor": (types.MONITOR, {
                    "tooltip": "From Training Monitor: sample and score the run by the intent "
                               "every N steps, show it live on this node, mark samples, stop "
                               "early and keep the best checkpoint. Not connected: the loss "
                               "only (Stop still works)."}),
            },
            # The panel on this node keeps the events of its own runs (the events name it).
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def train(self, training_set, base_model, intent=None, monitor=None, unique_id=None,
              **settings):
        # diffusers/peft: only when training
        from ..intenttuner.monitor.monitor import TrainingMonitor
        from ..intenttuner.training.trainer import train

        settings["run_name"] = settings["run_name"].strip()
        settings["resume_from"] = settings.get("resume_from", "").strip()
        settings["text_encoder_lr"] = settings.get("text_encoder_lr") or None  # 0: the default
        if intent is None and monitor is not None:
            intent = monitor.intent
        config = make_config(base_model=str(base_model.source), training_set=training_set.root,
                             intent=intent.public_dict() if intent is not None else None,
                             **settings)
        runtime = get_runtime()
        prompt_id, context_node = comfy_bridge.executing_context() or (None, None)
        node = str(unique_id) if unique_id is not None else context_node
        # The monitor sends the step events (and the others) and answers the panel's Stop.
        observer = TrainingMonitor(monitor, emit=runtime.send_event, node=node,
                                   prompt_id=prompt_id)
        result = train(config, base_model=base_model, training_set=training_set,
                       observer=observer)
        return self.outputs(result, observer)

    @staticmethod
    def outputs(result, observer) -> dict:
        """The node's outputs and UI of a finished (or stopped) run and its monitor."""
        name = lora_name(result.lora_path)
        chart = loss_chart(result.losses, f"{result.run_name}: loss per step")
        best = observer.best
        best_result = (dataclasses.replace(result, lora_path=Path(best["path"]))
                       if best else result)
        curves, grid = observer.curves_image(), observer.grid_image()
        stopped = ([f"Stopped by Stop after {result.steps} of {observer.run.total_steps} "
                    "step(s); the LoRA holds the steps done."]
                   if result.stopped and observer.run is not None else [])
        text = "\n".join([run_summary(result, name), *stopped, *observer.summary_lines()])
        images = [curves, grid] if observer.points else [curves]
        ui = {"images": get_runtime().save_ui_images(images, "training"), "text": [text]}
        return {"ui": ui, "result": (result, name, pils_to_batch([chart]), text, best_result,
                                     lora_name(best_result.lora_path), pils_to_batch([curves]),
                                     pils_to_batch([grid]))}


class ApplyTrainedLoRA:
    DISPLAY_NAME = "Apply Trained LoRA"
    DESCRIPTION = ("Applies the LoRA LoRA Train just made to a MODEL and CLIP (e.g. from Load "
                   "Checkpoint with the same base model) through ComfyUI's own LoRA loading, "
                   "exactly as LoraLoader would load the file, so the same graph generates with "
                   "the result.")
    CATEGORY = CATEGORY
    FUNCTION = "apply"
    RETURN_TYPES = ("MODEL", "CLIP")
    RETURN_NAMES = ("model", "clip")
    OUTPUT_TOOLTIPS = ("The model with the LoRA.", "The text encoder with the LoRA.")

    @classmethod
    def INPUT_TYPES(cls):
        strength = {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}
        return {"required": {
            "model": ("MODEL", {"tooltip": "The diffusion model to apply the LoRA to (the base "
                                           "model it was trained on, or a fine-tune of it)."}),
            "clip": ("CLIP", {"tooltip": "The CLIP text encoder of the same checkpoint."}),
            "lora": (types.LORA, {"tooltip": "From LoRA Train."}),
            "strength_model": ("FLOAT", {**strength, "tooltip": "How strongly the LoRA changes "
                                                                "the diffusion model; may be "
                                                                "negative."}),
            "strength_clip": ("FLOAT", {**strength, "tooltip": "How strongly it changes the text "
                                                               "encoder (only if it was trained "
                                                               "on it)."}),
        }}

    def apply(self, model, clip, lora, strength_model: float, strength_clip: float):
        if strength_model == 0 and strength_clip == 0:
            return (model, clip)
        return comfy_bridge.apply_lora(model, clip, Path(lora.lora_path), strength_model,
                                       strength_clip)


NODES = [LoRATrain, ApplyTrainedLoRA]
