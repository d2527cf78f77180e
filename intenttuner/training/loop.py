"""The training loop, one optimizer step in named parts:

    samples -> inputs (cached latents) -> conditioning (cached or live text) -> loss ->
    backward (x gradient accumulation) -> finite check -> clip -> step -> schedule

Everything the loop needs lives in one `TrainContext` the trainer builds; everything that
changes from step to step (LoRA weights, optimizer, schedule, generator, batch position) is in
it too, so `checkpoints` can save and restore it whole. Mixed precision is torch autocast over
frozen weights already stored in the half dtype (LoRA weights stay fp32, as in diffusers'
scripts); fp16 adds a gradient scaler, bf16 needs none.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import TrainingDivergedError
from ..families.sd_model import BaseModel
from ..runtime import get_runtime
from .batches import BatchStream, Sample
from .config import TrainConfig
from .distributed import Distributed
from .latent_cache import LatentCache
from .lora_setup import LoraSetup
from .loss import add_noise, sample_losses, snr_weights
from .text_cache import TextCache, TextEmbeddings, encode_text, sdxl_time_ids


@dataclass
class StepInfo:
    """What each finished optimizer step reports (progress, metrics.jsonl, the node's chart)."""

    step: int
    total_steps: int
    loss: float
    lr: float
    epoch: int
    images_per_s: float


@dataclass
class TrainContext:
    config: TrainConfig
    model: BaseModel
    setup: LoraSetup
    unet: nn.Module                 # the UNet, wrapped for data parallelism when distributed
    scheduler: Any                  # DDPMScheduler (loss.training_scheduler)
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler | None   # set once the step count is known
    cache: LatentCache
    text: TextCache | None          # None: the text encoders are trained, encode live
    stream: BatchStream
    dist: Distributed
    device: torch.device
    weight_dtype: torch.dtype
    generator: torch.Generator = field(default_factory=torch.Generator)
    scaler: torch.amp.GradScaler | None = None
    optimizer_name: str = "AdamW"
    step: int = 0                   # optimizer steps finished
    # Batch position and generator state after the last finished step: what a checkpoint
    # saves, even when a later step was interrupted half-way (its draws must be made again).
    last_position: tuple[int, int] = (0, 0)
    last_generator_state: torch.Tensor | None = None

    def mark_step_done(self) -> None:
        self.last_position = self.stream.position
        self.last_generator_state = self.generator.get_state()


class NonFiniteLoss(TrainingDivergedError):
    """The loss (or the gradient norm) of step ``step`` is NaN or infinite; the step was not
    applied."""

    def __init__(self, step: int, value: float, what: str = "loss"):
        self.step, self.value = step, value
        super().__init__(f"the {what} became {value} at step {step}")


def autocast(ctx: TrainContext):
    if ctx.weight_dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(ctx.device.type, dtype=ctx.weight_dtype)


def latents_of(ctx: TrainContext, samples: list[Sample]) -> torch.Tensor:
    images = ctx.cache.images
    rows = [images[s.image].latents_flipped if s.flip else images[s.image].latents
            for s in samples]
    return torch.stack(rows).to(ctx.device)


def captions_of(ctx: TrainContext, samples: list[Sample]) -> list[str]:
    return ["" if s.drop_caption else ctx.cache.images[s.image].caption for s in samples]


def conditioning(ctx: TrainContext, samples: list[Sample]) -> tuple[torch.Tensor, dict | None]:
    """(encoder hidden states, SDXL's added conditioning or None) for ``samples``."""
    captions = captions_of(ctx, samples)
    if ctx.text is not None:
        embeddings = ctx.text.get(captions)
    else:
        embeddings = encode_text(ctx.model, captions, ctx.device, grad=True)
    hidden = embeddings.hidden.to(ctx.device)
    if ctx.model.kind != "sdxl":
        return hidden, None
    return hidden, sdxl_added_cond(ctx, samples, embeddings)


def sdxl_added_cond(ctx: TrainContext, samples: list[Sample],
                    embeddings: TextEmbeddings) -> dict[str, torch.Tensor]:
    images = ctx.cache.images
    time_ids = torch.stack([
        sdxl_time_ids(images[s.image].original_size, images[s.image].crop_top_left,
                      (images[s.image].bucket[1], images[s.image].bucket[0]))
        for s in samples])
    return {"text_embeds": embeddings.pooled.to(ctx.device), "time_ids": time_ids.to(ctx.device)}


def item_weights(ctx: TrainContext, samples: list[Sample]) -> torch.Tensor:
    """[B] loss factors of ``samples``' images (1 for ordinary items): reward fine-tuning's
    reward-weighted likelihood, sum_i r_i L_i, is the mean of these times the losses."""
    images = ctx.cache.images
    return torch.tensor([images[s.image].loss_weight for s in samples], dtype=torch.float32,
                        device=ctx.device)


def micro_step(ctx: TrainContext, samples: list[Sample], last: bool) -> float:
    """Forward and backward of one micro-batch (this process's shard); returns its loss (each
    sample's times its image's loss weight). Gradients are summed over the accumulation, each
    micro-batch weighted 1/accumulation."""
    accumulation = ctx.config.gradient_accumulation_steps
    latents = latents_of(ctx, samples)
    noisy = add_noise(ctx.scheduler, latents, ctx.generator, ctx.config.noise_offset,
                      ctx.dist.rank, ctx.dist.world_size)
    weights = snr_weights(ctx.scheduler, noisy.timesteps, ctx.config.min_snr_gamma)
    with ctx.dist.no_sync(ctx.unet, active=not last), autocast(ctx):
        hidden, added = conditioning(ctx, samples)
        prediction = ctx.unet(noisy.noisy, noisy.timesteps, encoder_hidden_states=hidden,
                              added_cond_kwargs=added, return_dict=False)[0]
    loss = (sample_losses(prediction, noisy.target, weights) * item_weights(ctx, samples)).mean()
    scaled = loss / accumulation
    (ctx.scaler.scale(scaled) if ctx.scaler else scaled).backward()
    return float(loss.detach())


def average_text_encoder_grads(ctx: TrainContext) -> None:
    """DDP wraps the UNet only (the text encoders run inside `encode_text`, unwrapped), so
    their LoRA gradients are averaged over the processes here, once per step."""
    if not ctx.dist.enabled:
        return
    import torch.distributed as tdist

    for group in ctx.setup.param_groups:
        if group["name"] == "unet":
            continue
        for param in group["params"]:
            if param.grad is not None:
                tdist.all_reduce(param.grad, op=tdist.ReduceOp.SUM)
                param.grad /= ctx.dist.world_size


def apply_gradients(ctx: TrainContext) -> float:
    """Clip, step the optimizer and the schedule, clear the gradients; returns the gradient
    norm before clipping. A non-finite norm stops before the
    optimizer step (`NonFiniteLoss`), except under the fp16 scaler, which skips such steps
    itself and lowers its scale."""
    params = ctx.setup.parameters()
    if ctx.scaler:
        ctx.scaler.unscale_(ctx.optimizer)
    # Clipping off still measures the norm (max_norm=inf clips nothing): a finite loss can
    # have non-finite gradients, and AdamW would write them into the LoRA.
    norm = float(torch.nn.utils.clip_grad_norm_(params, ctx.config.max_grad_norm or math.inf))
    if not ctx.scaler and not math.isfinite(norm):
        ctx.optimizer.zero_grad(set_to_none=True)
        raise NonFiniteLoss(ctx.step + 1, norm, "gradient norm")
    if ctx.scaler:
        ctx.scaler.step(ctx.optimizer)
        ctx.scaler.update()
    else:
        ctx.optimizer.step()
    ctx.schedule.step()
    ctx.optimizer.zero_grad(set_to_none=True)
    return norm


def train_step(ctx: TrainContext) -> float:
    """One optimizer step over ``gradient_accumulation_steps`` global batches; returns the
    loss (mean over micro-batches and processes). A non-finite loss raises `NonFiniteLoss`
    before the optimizer runs, so the weights stay those of the last good step."""
    accumulation = ctx.config.gradient_accumulation_steps
    losses = []
    for n in range(accumulation):
        samples = ctx.dist.shard(ctx.stream.next())
        losses.append(micro_step(ctx, samples, last=n == accumulation - 1))
    loss = ctx.dist.mean(sum(losses) / len(losses))
    if not math.isfinite(loss):
        ctx.optimizer.zero_grad(set_to_none=True)
        raise NonFiniteLoss(ctx.step + 1, loss)
    average_text_encoder_grads(ctx)
    apply_gradients(ctx)
    ctx.step += 1
    ctx.mark_step_done()
    return loss


def run_steps(ctx: TrainContext, total_steps: int, after_step: Callable[[StepInfo], None],
              should_stop: Callable[[], bool] | None = None) -> list[float]:
    """Train from ``ctx.step`` to ``total_steps``; ``after_step`` runs after each step (metrics,
    checkpoints, the caller's hook). Cancel: ``check_interrupted`` / the progress bar raise.
    ``should_stop``: asked before each step on the main process (see `stop_agreed`); True ends
    the loop there, with ``ctx.step`` steps done."""
    runtime = get_runtime()
    images_per_step = (ctx.config.batch_size * ctx.dist.world_size
                       * ctx.config.gradient_accumulation_steps)
    losses: list[float] = []
    with runtime.progress(total_steps, "Training LoRA") as bar:
        if ctx.step:
            bar.update(ctx.step)
        while ctx.step < total_steps:
            runtime.check_interrupted()
            if should_stop is not None and stop_agreed(ctx, should_stop):
                break
            started = time.perf_counter()
            lr = float(ctx.schedule.get_last_lr()[0])  # the rate this step applies
            loss = train_step(ctx)
            elapsed = max(time.perf_counter() - started, 1e-9)
            losses.append(loss)
            info = StepInfo(step=ctx.step, total_steps=total_steps, loss=loss, lr=lr,
                            epoch=ctx.stream.epoch + 1, images_per_s=images_per_step / elapsed)
            after_step(info)
            bar.update(1)
    return losses


def stop_agreed(ctx: TrainContext, should_stop: Callable[[], bool]) -> bool:
    """The main process's ``should_stop()`` on every process: they must all stop before the
    same step, or the others would wait for it in the next gradient all-reduce."""
    return bool(ctx.dist.broadcast(bool(should_stop()) if ctx.dist.is_main else None))
