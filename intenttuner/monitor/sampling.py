"""Sample images of a run as it stands: the evaluation plan's prompts through a diffusers
pipeline over the very modules being trained (``BaseModel.pipeline()``), the in-training LoRA
active, so a sample point costs no LoRA file load and sees exactly the weights of its step.

Reproducible by construction: every item draws its start noise from its own CPU generator
seeded with the item's seed (CPU, so the same seed gives the same noise on any device, as
ComfyUI's KSampler does), and batching does not change what an item gets (beyond float
rounding, which a random tiny model can amplify to a few pixel levels). The run goes on
afterwards as if nothing happened: the components' train/eval modes and placement are put
back, and the training scheduler is untouched (the pipeline gets its own).

Half-precision runs (fp16/bf16 base weights, fp32 LoRA layers) sample without autocast: peft
casts each LoRA layer's input to its own dtype and the result back, and the pipeline keeps its
own dtype handling. Under fp16 autocast SDXL's VAE would decode in fp16 even after the
pipeline upcasts it for its ``force_upcast`` (it overflows there), so autocast is left out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from PIL import Image

from ..errors import InputError
from ..evaluation.types import EvalItem
from ..families.sd_model import BaseModel
from ..imageio import to_rgb_pil
from ..runtime import get_runtime
from ..training.model_setup import exact, place
from .settings import MonitorSettings


def generate(model: BaseModel, items: Sequence[EvalItem], settings: MonitorSettings, size: int,
             device: torch.device | str) -> list[Image.Image]:
    """One ``size`` x ``size`` RGB image per item (in order): ``item.prompt`` sampled with
    ``settings.sample_steps`` steps of the model's own scheduler at ``settings.guidance_scale``,
    ``settings.batch_size`` items per pipeline call, start noise from ``item.seed``. Cancel
    (``runtime.check_interrupted``) is checked after every denoising step."""
    if size <= 0 or size % 8:
        raise InputError(f"sample_size {size} must be a positive multiple of 8.")
    device = exact(torch.device(device))
    pipe = model.pipeline()
    pipe.set_progress_bar_config(disable=True)
    runtime = get_runtime()

    def check_cancel(pipeline, step, timestep, kwargs):
        runtime.check_interrupted()
        return kwargs

    images: list[Image.Image] = []
    with sampling_mode(model, device), torch.no_grad():
        for start in range(0, len(items), settings.batch_size):
            batch = list(items[start:start + settings.batch_size])
            generators = [torch.Generator("cpu").manual_seed(item.seed) for item in batch]
            out = pipe(prompt=[item.prompt for item in batch], height=size, width=size,
                       num_inference_steps=settings.sample_steps,
                       guidance_scale=settings.guidance_scale, generator=generators,
                       output_type="pil", callback_on_step_end=check_cancel)
            images.extend(to_rgb_pil(image) for image in out.images)
    return images


@contextlib.contextmanager
def sampling_mode(model: BaseModel, device: torch.device) -> Iterator[None]:
    """Every component on ``device`` (through the host's manager; directly for any the manager
    moved away again while loading another) in eval mode; afterwards each back in its mode and
    place: the offloaded ones offloaded again, the trained ones where the training step expects
    them (also when loading the others made the host move them)."""
    modules = model.modules()
    before = {name: (module_device(module), module.training)
              for name, module in modules.items()}
    try:
        for name, module in modules.items():
            place(model, name, device)
            module.eval()
        # On tight VRAM the host's manager may evict a component placed earlier to load a
        # later one (ComfyUI's VAE load can push the UNet back to the CPU); the pipeline needs
        # them all on one device, so the evicted ones go there directly.
        for module in modules.values():
            if module_device(module) != device:
                module.to(device)
        yield
    finally:
        for name, (where, training) in before.items():
            module = modules[name]
            module.train(training)
            if module_device(module) == where:
                continue
            managed = model.managed(name)
            if where == exact(managed.offload_device):
                managed.offload()
            else:
                module.to(where)


def module_device(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device
