"""How well a model reproduces given images: their denoising loss at fixed noise and timesteps.

The training loss is noisy from step to step (random noise, random timesteps, random images),
so two LoRAs cannot be compared by it. Here every image gets the same noise and the same
evenly spaced timesteps under every LoRA, so the loss differs by the weights only: lower
means the model (with whatever LoRA is applied, e.g. inside `lora_apply.lora_applied`)
predicts the noise of those images better, i.e. puts more probability on them. A reward
fine-tune reports it for the original training set (did the LoRA keep what it learned?), and
tests compare the loss of well- and badly-marked images with it (did it move towards the good
ones?).

    with lora_applied(model, config, path):
        losses = denoising_losses(model, [(image_path, caption), ...], 64, "cpu")

Images are prepared as training prepares them (`buckets.load_for_bucket`: scaled to cover a
``size`` square, centre-cropped; latents as `latent_cache.encode_batch` makes them); the loss
is the plain epsilon MSE (no Min-SNR weights), averaged over ``draws`` timesteps.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ..errors import InputError
from ..families.sd_model import BaseModel
from ..training.buckets import load_for_bucket
from ..training.latent_cache import encode_batch
from ..training.loss import sample_losses, training_scheduler
from ..training.model_setup import exact
from ..training.text_cache import encode_text, sdxl_time_ids
from .sampling import sampling_mode

DRAWS = 8  # timesteps per image: enough to cover the schedule, few enough to be quick
# Images per UNet call; each is run at all its timesteps at once, so one image is already a
# batch of `DRAWS` (what sampling 4 images with guidance costs): safe for SDXL at 1024 px.
BATCH = 1

Pair = tuple[str | os.PathLike, str]  # (image file, caption)


def fixed_timesteps(scheduler, draws: int) -> torch.Tensor:
    """``draws`` timesteps at the centres of equal slices of the schedule: every part of the
    noise range weighs alike, with none of the spread random timesteps would add."""
    total = scheduler.config.num_train_timesteps
    return ((torch.arange(draws) + 0.5) * total / draws).long().clamp(0, total - 1)


def denoising_losses(model: BaseModel, pairs: Sequence[Pair], size: int,
                     device: torch.device | str, seed: int = 0, draws: int = DRAWS,
                     timesteps: Sequence[int] | None = None,
                     batch_size: int = BATCH) -> list[float]:
    """The denoising loss of each (image file, caption) of ``pairs`` (see the module
    docstring), in order. The noise of the n-th image depends on ``seed`` and n only, so the
    same call under another LoRA sees exactly the same noise. ``timesteps``: these instead of
    ``draws`` evenly spaced ones (the low ones weigh the image's content most: at high ones
    the noise hides it)."""
    if size <= 0 or size % 8:
        raise InputError(f"size {size} must be a positive multiple of 8.")
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}.")
    scheduler = training_scheduler(model.scheduler)
    total = scheduler.config.num_train_timesteps
    if timesteps is None:
        if draws < 1:
            raise InputError(f"draws must be at least 1, got {draws}.")
        timesteps = fixed_timesteps(scheduler, draws)
    else:
        if not timesteps or any(not 0 <= int(t) < total for t in timesteps):
            raise InputError(f"timesteps must be a non-empty list of integers from 0 to "
                             f"{total - 1}, got {list(timesteps)!r}.")
        timesteps = torch.tensor([int(t) for t in timesteps], dtype=torch.long)
    device = exact(torch.device(device))
    generator = torch.Generator().manual_seed(seed)  # CPU: the same draws on every device
    losses: list[float] = []
    with sampling_mode(model, device), torch.no_grad():
        for first in range(0, len(pairs), batch_size):
            chunk = pairs[first:first + batch_size]
            losses += chunk_losses(model, chunk, size, device, scheduler, timesteps, generator)
    return losses


def chunk_losses(model: BaseModel, pairs: Sequence[Pair], size: int, device: torch.device,
                 scheduler, timesteps: torch.Tensor, generator: torch.Generator) -> list[float]:
    """`denoising_losses` of a few pairs in one UNet call (every pair at every timestep)."""
    draws = len(timesteps)
    pixels = torch.stack([load_for_bucket(Path(path), (size, size))[0] for path, _ in pairs])
    latents = torch.stack(encode_batch(model.vae, pixels, device,
                                       [Path(path).name for path, _ in pairs]))
    # One draw per image, in order: its noise is the same whatever the batch size.
    noise = torch.stack([torch.randn((draws, *latents.shape[1:]), generator=generator)
                         for _ in pairs])
    dtype = model.unet.dtype
    latents = latents[:, None].expand_as(noise).flatten(0, 1).to(device, dtype)
    noise = noise.flatten(0, 1).to(device, dtype)
    steps = timesteps.repeat(len(pairs)).to(device)
    text = encode_text(model, [caption for _, caption in pairs for _ in range(draws)], device)
    added = None
    if model.kind == "sdxl":
        time_ids = sdxl_time_ids((size, size), (0, 0), (size, size))
        added = {"text_embeds": text.pooled,
                 "time_ids": time_ids.expand(len(steps), -1).to(device, text.pooled.dtype)}
    prediction = model.unet(scheduler.add_noise(latents, noise, steps), steps,
                            encoder_hidden_states=text.hidden, added_cond_kwargs=added,
                            return_dict=False)[0]
    return sample_losses(prediction, noise, None).view(len(pairs), draws).mean(1).tolist()
