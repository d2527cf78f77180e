"""The base model's side of a training run: loading it in the training dtype, refusing what
cannot be trained on, adding the run's seeded LoRA, placing components on this process's
device, and giving the model back as it came (the graph may share it with other nodes)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import InputError
from ..families.sd_model import UNSUPPORTED, BaseModel, inpainting_problem
from ..runtime import get_runtime
from ..weights.locate import resolve_model
from .config import TrainConfig
from .lora_setup import LoraSetup, add_lora, remove_lora
from .loss import training_scheduler
from .text_cache import encoder_names

PRECISION_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


def load_base(config: TrainConfig, dtype: torch.dtype) -> BaseModel:
    """The base model of ``config.base_model`` (an absolute path, or a name in
    models/checkpoints or models/diffusers), loaded in the training dtype (nothing to cast)."""
    from ..families.base_model import load_base_model

    path = Path(config.base_model).expanduser()
    if not path.is_absolute():
        for folder in ("checkpoints", "diffusers"):
            try:
                path = resolve_model(folder, config.base_model)
                break
            except FileNotFoundError:
                continue
        else:
            raise InputError(f"base_model {config.base_model!r} is neither in models/checkpoints "
                             "nor in models/diffusers; give its file or folder name there, or "
                             "an absolute path.")
    return load_base_model(path, precision=PRECISION_NAMES[dtype])


def check_base_model(model: BaseModel):
    """The training noise scheduler; InputError naming what the model is when it cannot be
    trained on (inpainting UNets accepted by the graph's loader, v-prediction)."""
    if model.kind not in ("sd15", "sdxl"):
        raise InputError(f"The base model {model.source} is a {model.kind} model, which is "
                         f"{UNSUPPORTED}.")
    channels = model.unet.config.in_channels
    if channels != 4:
        raise InputError(f"The base model {model.source.name} is {inpainting_problem(channels)}; "
                         "a LoRA trains on a 4-channel text-to-image base (SD 1.5 or SDXL). "
                         "Load the base model without allow_inpainting.")
    return training_scheduler(model.scheduler)


def trained_components(model: BaseModel, config: TrainConfig) -> list[str]:
    return ["unet", *(encoder_names(model) if config.train_text_encoder else [])]


def add_seeded_lora(model: BaseModel, config: TrainConfig, dtype: torch.dtype) -> LoraSetup:
    """Offload the trained components (their original tensors stay on the offload device for
    `remove_lora`), then add LoRA initialised from the run's seed."""
    for name in trained_components(model, config):
        model.managed(name).offload()
    # LoRA initialisation draws from torch's global generator: seed it for this run only,
    # leaving the host's random state as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return add_lora(model, config, dtype)


def place(model: BaseModel, name: str, device: torch.device) -> None:
    """Load component ``name`` through the host's manager, then onto this process's device if
    that is another one (several processes: cuda:LOCAL_RANK; ``accelerate launch --cpu``)."""
    module = model.managed(name).load()
    if next(module.parameters()).device != exact(device):
        module.to(device)


def exact(device: torch.device) -> torch.device:
    """``cuda`` as the ``cuda:N`` tensors report."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def restore_model(model: BaseModel, setup: LoraSetup) -> None:
    """Adapters out, original tensors back, components offloaded (even after a failure)."""
    names = list(setup.saved)
    remove_lora(setup)
    for name in names:
        model.managed(name).offload()
    get_runtime().free_memory()
