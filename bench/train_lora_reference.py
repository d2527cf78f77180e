"""The reference LoRA trainer of bench/train_lora.py: the per-step work of diffusers'
``examples/text_to_image/train_text_to_image_lora.py`` at its defaults, re-implemented (not
copied) for a model that is already loaded.

What that script does on every step, and so does this loop:

- the data loader (``num_workers=0``, shuffled) opens and decodes each image again, resizes its
  shorter side to the resolution (Lanczos), crops it (random crop: ``--center_crop`` is off by
  default), no flip (``--random_flip`` off), scales to [-1, 1], and tokenizes the caption
  (padded to 77 tokens);
- ``vae.encode(pixels).latent_dist.sample() * scaling_factor`` (no caching), outside
  ``no_grad`` as in the script (every frozen weight has ``requires_grad=False``, so autograd
  keeps nothing);
- the text encoder on the batch's tokens (no caching);
- DDPM noise at a uniform random timestep, epsilon target, plain MSE (no ``--snr_gamma``,
  no noise offset), backward, gradient clipping at 1.0, AdamW (0.9, 0.999, weight decay 1e-2,
  eps 1e-8), the "constant" LR schedule (its 500 warm-up steps do not apply to "constant").

Frozen weights stay in the weight dtype of ``--mixed_precision`` (default "no": fp32), no
gradient checkpointing (off by default). LoRA: ``unet.add_adapter(LoraConfig(r=rank,
lora_alpha=rank, init_lora_weights="gaussian", target_modules=TARGETS))``; the script sets
alpha = rank, and so does the benchmark for both trainers.

The script clips ``lora_layers``, a ``filter`` generator the optimizer has already consumed, so
its clipping sees no parameters; this loop clips the LoRA parameters, as the script means to
(the cost is negligible either way).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

TARGETS = ("to_k", "to_q", "to_v", "to_out.0")
PHASES = ("data", "vae", "text", "unet")  # unet: forward, loss, backward, clip, optimizer


@dataclass
class Settings:
    """The settings both trainers of the benchmark share."""

    resolution: int
    batch_size: int
    rank: int
    learning_rate: float
    steps: int
    seed: int = 0


@dataclass
class ReferenceResult:
    losses: list[float]
    lora_modules: list[str]      # names (in the UNet) of the modules that got a LoRA
    lora_parameters: int
    phase_seconds: dict[str, float] = field(default_factory=dict)


class CaptionedImages(torch.utils.data.Dataset):
    """(image path, caption) pairs, decoded and transformed anew on every access."""

    def __init__(self, pairs: list[tuple[Path, str]], tokenizer, resolution: int):
        from torchvision import transforms

        self.pairs = pairs
        self.tokenizer = tokenizer
        self.transform = transforms.Compose([
            transforms.Resize(resolution, interpolation=transforms.InterpolationMode.LANCZOS),
            transforms.RandomCrop(resolution),
            transforms.ToTensor(),
            transforms.Normalize([0.5], [0.5]),
        ])

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        from PIL import Image

        path, caption = self.pairs[index]
        with Image.open(path) as image:
            pixels = self.transform(image.convert("RGB"))
        ids = self.tokenizer([caption], max_length=self.tokenizer.model_max_length,
                             padding="max_length", truncation=True, return_tensors="pt")
        return {"pixel_values": pixels, "input_ids": ids.input_ids[0]}


def collate(examples: list[dict]) -> dict[str, torch.Tensor]:
    pixels = torch.stack([e["pixel_values"] for e in examples])
    return {"pixel_values": pixels.to(memory_format=torch.contiguous_format).float(),
            "input_ids": torch.stack([e["input_ids"] for e in examples])}


def training_pairs(training_set) -> list[tuple[Path, str]]:
    """Each item once per repeat, as the reference script's image folder would list it."""
    return [(training_set.image_path(item), item.caption)
            for item in training_set.items for _ in range(item.repeats)]


def add_lora(unet, rank: int) -> list[torch.nn.Parameter]:
    from peft import LoraConfig

    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                target_modules=list(TARGETS)))
    return [p for p in unet.parameters() if p.requires_grad]


def lora_module_names(module: torch.nn.Module) -> list[str]:
    """Names of the modules holding a LoRA (peft layers have ``lora_A``)."""
    return [name for name, m in module.named_modules() if hasattr(m, "lora_A")]


def train_reference(model, training_set, settings: Settings, out_dir: Path,
                    on_step: Callable[[int], None] | None = None) -> ReferenceResult:
    """Train ``settings.steps`` optimizer steps on ``model`` (a loaded `BaseModel`, fp32 CPU)
    as the reference script would, calling ``on_step(step)`` after each; save the LoRA."""
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    unet, vae, text_encoder = model.unet, model.vae, model.text_encoder
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
    weight_dtype = torch.float32  # --mixed_precision "no"
    params = add_lora(unet, settings.rank)
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, betas=(0.9, 0.999),
                                  weight_decay=1e-2, eps=1e-8)
    lr_scheduler = get_scheduler("constant", optimizer=optimizer, num_warmup_steps=500,
                                 num_training_steps=settings.steps)
    noise_scheduler = DDPMScheduler.from_config(model.scheduler.config)
    loader = torch.utils.data.DataLoader(
        CaptionedImages(training_pairs(training_set), model.tokenizer, settings.resolution),
        shuffle=True, collate_fn=collate, batch_size=settings.batch_size, num_workers=0)

    phases = dict.fromkeys(PHASES, 0.0)
    losses: list[float] = []
    unet.train()
    while len(losses) < settings.steps:
        batches = iter(loader)
        while len(losses) < settings.steps:
            started = time.perf_counter()
            batch = next(batches, None)
            if batch is None:
                break  # end of the epoch
            phases["data"] += time.perf_counter() - started
            loss = one_step(batch, vae, text_encoder, unet, noise_scheduler, weight_dtype,
                            phases)
            started = time.perf_counter()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.detach().item())
            phases["unet"] += time.perf_counter() - started
            if on_step is not None:
                on_step(len(losses))
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in get_peft_model_state_dict(unet).items()},
              str(out_dir / "reference_lora.safetensors"))
    return ReferenceResult(losses=losses, lora_modules=lora_module_names(unet),
                           lora_parameters=sum(p.numel() for p in params), phase_seconds=phases)


def one_step(batch, vae, text_encoder, unet, noise_scheduler, weight_dtype,
             phases: dict[str, float]) -> torch.Tensor:
    """The forward part of one reference step: VAE, text encoder, noise, UNet, loss."""
    import torch.nn.functional as F

    started = time.perf_counter()
    latents = vae.encode(batch["pixel_values"].to(dtype=weight_dtype)).latent_dist.sample()
    latents = latents * vae.config.scaling_factor
    phases["vae"] += time.perf_counter() - started

    noise = torch.randn_like(latents)
    timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps,
                              (latents.shape[0],), device=latents.device).long()
    noisy_latents = noise_scheduler.add_noise(latents, noise, timesteps)

    started = time.perf_counter()
    encoder_hidden_states = text_encoder(batch["input_ids"], return_dict=False)[0]
    phases["text"] += time.perf_counter() - started

    started = time.perf_counter()
    model_pred = unet(noisy_latents, timesteps, encoder_hidden_states, return_dict=False)[0]
    loss = F.mse_loss(model_pred.float(), noise.float(), reduction="mean")  # epsilon target
    phases["unet"] += time.perf_counter() - started
    return loss
