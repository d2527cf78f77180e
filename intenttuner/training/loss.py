"""The diffusion training loss: noise the latents at random timesteps, predict the noise back.

As in diffusers' ``train_text_to_image_lora.py`` and kohya's ``train_network.py``: Gaussian
noise (plus the optional offset noise of crosslabs.org's "diffusion with offset noise": one
random value per sample and channel), timesteps uniform over the scheduler's 1000, the DDPM
forward process ``scheduler.add_noise``, the epsilon target, and Min-SNR-gamma weights
(Hang et al. 2023, section 3.4; for epsilon prediction ``min(snr, gamma) / snr``) from
``diffusers.training_utils.compute_snr``.

Every random draw comes from one CPU ``torch.Generator`` that the loop owns and checkpoints,
so a resumed run draws exactly the numbers the uninterrupted run would have drawn (CPU draws
are also the same on every device, unlike CUDA generators).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import InputError


@dataclass
class NoisyBatch:
    noisy: torch.Tensor       # latents with noise at `timesteps`, the UNet's input
    target: torch.Tensor      # what the UNet must predict (the noise: epsilon)
    timesteps: torch.Tensor   # [B] long


def training_scheduler(model_scheduler):
    """A DDPMScheduler with the base model's noise schedule (whatever sampler it ships with:
    add_noise is the DDPM forward process for all of them). v-prediction is refused: the base
    loader already refuses such checkpoints; this guards a hand-made one."""
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler.from_config(model_scheduler.config)
    if scheduler.config.prediction_type != "epsilon":
        raise InputError(f"The base model predicts {scheduler.config.prediction_type}; LoRA "
                         "training supports epsilon-prediction SD 1.5 / SDXL models only.")
    return scheduler


def add_noise(scheduler, latents: torch.Tensor, generator: torch.Generator,
              noise_offset: float = 0.0, rank: int = 0, world_size: int = 1) -> NoisyBatch:
    """Noise ``latents`` [B, C, h, w] at uniform random timesteps (draws from ``generator``).

    With several processes every rank holds the same generator and draws for the whole global
    batch, keeping its own strided share (the samples `Distributed.shard` gave it): ranks get
    different noise and timesteps, and N processes draw what one process would."""
    shape = (latents.shape[0] * world_size, *latents.shape[1:])
    mine = slice(rank, None, world_size)
    noise = torch.randn(shape, generator=generator)
    if noise_offset:
        noise += noise_offset * torch.randn((shape[0], shape[1], 1, 1), generator=generator)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (shape[0],),
                              generator=generator)
    noise, timesteps = noise[mine][: latents.shape[0]], timesteps[mine][: latents.shape[0]]
    noise = noise.to(latents.device, latents.dtype)
    timesteps = timesteps.to(latents.device)
    return NoisyBatch(scheduler.add_noise(latents, noise, timesteps), noise, timesteps)


def snr_weights(scheduler, timesteps: torch.Tensor, gamma: float) -> torch.Tensor | None:
    """Min-SNR-gamma loss weights [B] for epsilon prediction; None when gamma is 0 (off)."""
    if not gamma:
        return None
    from diffusers.training_utils import compute_snr

    snr = compute_snr(scheduler, timesteps)
    return torch.clamp(snr, max=gamma) / snr


def sample_losses(prediction: torch.Tensor, target: torch.Tensor,
                  weights: torch.Tensor | None) -> torch.Tensor:
    """Per-sample MSE [B] in float32, weighted."""
    losses = F.mse_loss(prediction.float(), target.float(), reduction="none")
    losses = losses.mean(dim=list(range(1, losses.ndim)))
    return losses * weights if weights is not None else losses
