"""`TrainConfig`: every setting of a LoRA training run, as one JSON-serialisable object.

The same object drives a run from the graph (LoRATrain writes it as ``config.json`` into the
run folder, beside the checkpoints) and from the command line
(``python -m intenttuner train models/loras/<run>/config.json``), so a run started in ComfyUI
can be repeated, resumed or scaled out to several GPUs headless. Values that cannot work are
refused here, each naming the setting and what to do, before any model is touched.

The defaults are those of a serious SD 1.5 LoRA run (kohya's common choices: rank 16, alpha
half the rank, AdamW at 1e-4, min-SNR 5, gradient checkpointing on, latents and text
embeddings cached).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import InputError

CONFIG_FILE = "config.json"
CONFIG_VERSION = 1
# The resolution step: latents are 1/8 of the image and the UNet halves them three times.
RESOLUTION_STEP = 64
MAX_RESOLUTION = 4096
MAX_RANK = 1024

Scheduler = Literal["constant", "cosine", "linear"]
Precision = Literal["auto", "no", "fp16", "bf16"]
Optimizer = Literal["auto", "adamw", "adamw8bit"]


class TrainConfig(BaseModel):
    """Settings of one LoRA training run (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    version: Literal[1] = CONFIG_VERSION
    # -- what is trained on -------------------------------------------------------------------
    base_model: str = Field(
        description="The base checkpoint: a single-file .safetensors in models/checkpoints or a "
                    "diffusers folder (absolute path, or a name relative to its models folder).")
    training_set: str = Field(description="The training set's folder (kohya layout).")
    run_name: str = Field(
        default="", description="Name of the run: the LoRA is models/loras/<run_name>.safetensors "
                                "and its checkpoints go to models/loras/<run_name>/. Empty: the "
                                "training set's name. An existing run is never replaced: a "
                                "free name '<run_name>-2', '-3'... is used instead.")
    output_dir: str = Field(default="", description="Where LoRAs go; empty: models/loras.")
    # -- the network --------------------------------------------------------------------------
    rank: int = Field(default=16, ge=1, le=MAX_RANK,
                      description="LoRA rank (kohya network_dim) of the linear layers.")
    alpha: float = Field(default=8.0, gt=0,
                         description="LoRA alpha; the update is scaled by alpha / rank.")
    conv_rank: int = Field(default=0, ge=0, le=MAX_RANK,
                           description="Rank of the 3x3 convolutions (LoCon); 0: linear only.")
    conv_alpha: float = Field(default=1.0, gt=0, description="Alpha of the convolution LoRA.")
    train_text_encoder: bool = Field(
        default=False, description="Also train LoRA on the text encoder(s) (then their outputs "
                                   "cannot be cached).")
    # -- optimisation -------------------------------------------------------------------------
    learning_rate: float = Field(default=1e-4, gt=0, le=1.0)
    text_encoder_lr: float | None = Field(
        default=None, gt=0, le=1.0, description="Text encoder LR; None: learning_rate / 2.")
    lr_scheduler: Scheduler = "constant"
    lr_warmup_steps: int = Field(default=0, ge=0)
    max_train_steps: int = Field(default=1000, ge=1, description="Optimizer steps in all.")
    epochs: int = Field(default=0, ge=0, description="If > 0, train this many epochs instead "
                                                     "of max_train_steps.")
    batch_size: int = Field(default=1, ge=1, le=256, description="Images per step per device.")
    gradient_accumulation_steps: int = Field(default=1, ge=1, le=1024)
    optimizer: Optimizer = Field(
        default="auto", description="auto: 8-bit AdamW when bitsandbytes and CUDA are there, "
                                    "else AdamW (fused on CUDA).")
    weight_decay: float = Field(default=1e-2, ge=0)
    max_grad_norm: float = Field(default=1.0, ge=0, description="Gradient clipping; 0: off.")
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    # -- images -------------------------------------------------------------------------------
    resolution: int = Field(
        default=0, ge=0, le=MAX_RESOLUTION,
        description="Training side length in px (a multiple of 64); 0: the model's own (512 for "
                    "SD 1.5, 1024 for SDXL). With buckets it is the area, not the shape.")
    buckets: bool = Field(default=True, description="Aspect-ratio buckets (else centre crops).")
    upscale_small_images: bool = Field(
        default=False, description="Upscale images smaller than their bucket (else refuse them).")
    flip: bool = Field(default=False, description="Random horizontal flips (both cached).")
    # -- the loss -----------------------------------------------------------------------------
    mixed_precision: Precision = Field(
        default="auto", description="auto: bf16 on GPUs that have it, else fp16 on CUDA, fp32 on "
                                    "CPU. Frozen weights are stored in this precision.")
    gradient_checkpointing: bool = True
    min_snr_gamma: float = Field(default=5.0, ge=0, description="Min-SNR weighting; 0: off.")
    noise_offset: float = Field(default=0.0, ge=0, le=1.0)
    caption_dropout: float = Field(default=0.0, ge=0, le=1.0,
                                   description="Probability of training on the empty caption.")
    # -- saving -------------------------------------------------------------------------------
    save_every_steps: int = Field(default=0, ge=0, description="Checkpoint every N steps; 0: "
                                                               "the final file only.")
    keep_checkpoints: int = Field(default=0, ge=0, description="Keep the newest N; 0: all.")
    resume_from: str = Field(default="", description="A checkpoint (.safetensors in the run "
                                                     "folder) to continue from.")
    init_lora: str = Field(
        default="", description="A kohya LoRA file to start the adapters from instead of zero "
                                "(continuing a trained LoRA on new data, e.g. reward "
                                "fine-tuning); its rank, alpha and conv_rank must be this "
                                "config's, its base model this run's. Ignored with resume_from "
                                "(the checkpoint holds the weights). Empty: a fresh LoRA.")
    cache_latents_to_disk: bool = Field(
        default=True, description="Keep VAE latents on disk, so later runs on the same images "
                                  "and base model encode nothing.")
    intent: dict[str, Any] | None = Field(
        default=None, description="Intent.public_dict() (no reference crops) for the file's "
                                  "metadata; None: the training set's own.")

    @model_validator(mode="after")
    def _values_that_work(self) -> TrainConfig:
        if self.resolution and self.resolution % RESOLUTION_STEP:
            raise ValueError(f"resolution {self.resolution} is not a multiple of "
                             f"{RESOLUTION_STEP}; use e.g. {_nearest_step(self.resolution)}")
        if self.lr_warmup_steps >= self.max_train_steps and not self.epochs:
            raise ValueError(f"lr_warmup_steps ({self.lr_warmup_steps}) must be fewer than "
                             f"max_train_steps ({self.max_train_steps})")
        if self.keep_checkpoints and not self.save_every_steps:
            raise ValueError("keep_checkpoints needs save_every_steps > 0")
        return self

    # -- derived values -------------------------------------------------------------------------
    def resolution_for(self, kind: str) -> int:
        """The training resolution for a base model of ``kind`` ("sd15"/"sdxl")."""
        return self.resolution or (1024 if kind == "sdxl" else 512)

    def te_lr(self) -> float:
        return self.text_encoder_lr if self.text_encoder_lr is not None else self.learning_rate / 2

    # -- files ----------------------------------------------------------------------------------
    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``folder/config.json`` (atomically) and return its path."""
        from ..dataset.training_set import write_text_atomic

        path = Path(folder) / CONFIG_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, self.to_json() + "\n")
        return path


def make_config(**values: Any) -> TrainConfig:
    """A `TrainConfig` from keyword values; `InputError` naming each bad setting."""
    try:
        return TrainConfig(**values)
    except ValidationError as exc:
        raise InputError(describe_errors(exc, "training setting")) from None


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Read a config.json (from a run folder or written by hand); `InputError` if unusable."""
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_FILE
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(f"No training config at {path}. Pass the config.json that LoRATrain "
                         "wrote into the run folder (models/loras/<run>/config.json).") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"The training config {path} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"The training config {path} must hold a JSON object of settings.")
    try:
        return TrainConfig(**data)
    except ValidationError as exc:
        raise InputError(f"{path}: " + describe_errors(exc, "setting")) from None


def describe_errors(exc: ValidationError, what: str) -> str:
    """One line per bad value: the setting, the value given and what is wrong."""
    lines = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "config"
        given = f" (got {error['input']!r})" if error["type"] != "missing" and error["loc"] else ""
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{what} {name}{given}: {message}")
    return "; ".join(lines) + "."


def _nearest_step(value: int) -> int:
    return max(RESOLUTION_STEP, round(value / RESOLUTION_STEP) * RESOLUTION_STEP)
