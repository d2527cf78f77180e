"""The optimizer and learning-rate schedule of a run, and the training precision.

AdamW (fused on CUDA: one kernel for all LoRA tensors), or bitsandbytes' 8-bit AdamW
(optimizer "adamw8bit", or "auto" when bitsandbytes and CUDA are there: a quarter of the
optimizer memory). Schedules come from ``diffusers.optimization.get_scheduler``, the same
function diffusers' training scripts use.
"""

from __future__ import annotations

import importlib.util

import torch

from ..errors import InputError, MissingDependencyError
from .config import TrainConfig

PRECISIONS = {"fp16": torch.float16, "bf16": torch.bfloat16, "no": torch.float32}


def weight_dtype(config: TrainConfig, device: torch.device) -> torch.dtype:
    """The dtype of the frozen weights and of autocast: explicit, or "auto": bf16 where CUDA
    has it, else fp16 on CUDA, fp32 elsewhere (CPU half precision is slower, not faster)."""
    if config.mixed_precision != "auto":
        return PRECISIONS[config.mixed_precision]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def optimizer_name(config: TrainConfig, device: torch.device) -> str:
    """"adamw8bit" or "adamw", resolving "auto"; InputError when 8-bit cannot run here."""
    has_bnb = importlib.util.find_spec("bitsandbytes") is not None
    if config.optimizer == "adamw8bit":
        if not has_bnb:
            # An InputError (a setting that cannot work here), worded like
            # MissingDependencyError so it says how to install the package.
            raise InputError("optimizer adamw8bit: " + str(MissingDependencyError(
                "bitsandbytes", "The 8-bit AdamW optimizer")) + " Or choose optimizer auto "
                "(8-bit when bitsandbytes is there, else AdamW) or adamw.")
        if device.type != "cuda":
            raise InputError(f"optimizer adamw8bit needs a CUDA GPU (training runs on "
                             f"{device.type}); choose optimizer adamw or auto.")
        return "adamw8bit"
    if config.optimizer == "auto" and has_bnb and device.type == "cuda":
        return "adamw8bit"
    return "adamw"


def make_optimizer(param_groups: list[dict], config: TrainConfig, device: torch.device
                   ) -> tuple[torch.optim.Optimizer, str]:
    """The optimizer over ``param_groups`` (one per trained component, each with its lr) and
    its name for the metadata ("AdamW", "AdamW8bit")."""
    name = optimizer_name(config, device)
    groups = [{"params": g["params"], "lr": g["lr"]} for g in param_groups]
    if name == "adamw8bit":
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(groups, weight_decay=config.weight_decay), "AdamW8bit"
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, weight_decay=config.weight_decay, fused=fused), "AdamW"


def make_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int
                  ) -> torch.optim.lr_scheduler.LRScheduler:
    """The LR schedule over ``total_steps`` optimizer steps (constant, cosine or linear decay,
    each after ``lr_warmup_steps`` of linear warm-up)."""
    from diffusers.optimization import get_scheduler

    name = config.lr_scheduler
    if name == "constant" and config.lr_warmup_steps:
        name = "constant_with_warmup"
    return get_scheduler(name, optimizer=optimizer, num_warmup_steps=config.lr_warmup_steps,
                         num_training_steps=total_steps)
